/**
 * `reroot:` (spec §13): the project root is the directory of spread.yaml
 * joined with it. Suites are found there, the content sent is packed from
 * there (automatic include and repack working directory), and the reuse
 * file lives there. Real runs on the local backend, through the real CLI.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';

const spreadYaml = (reroot: string, machines: string, extra = ''): string => `project: rerooted
path: /rerooted
reroot: ${reroot}
${extra}backends:
    local:
        location: ${machines}
        systems: [this-host]
suites:
    tests/main/:
        summary: main
`;

/** A task that shows what was sent: the files at the top of the content. */
const SHOW_CONTENT = 'summary: show content\nexecute: ls -a "$SPREAD_PATH" > "$SPREAD_PATH/../../sent.txt"\n';

test('reroot: .. finds suites, packs content and runs repack from the parent of spread.yaml, and keeps the reuse file there', async () => {
  const machines = mkdtempSync(join(tmpdir(), 'spread-reroot-machines-'));
  const dir = makeProject({
    'spread/spread.yaml': spreadYaml('..', machines, 'repack: |\n    pwd > "$SPREAD_PATH_CHECK"\n    cat <&3 >&4\n'),
    'tests/main/show/task.yaml': SHOW_CONTENT,
    'at-the-root.txt': 'root\n',
  });
  const env = { SPREAD_PATH_CHECK: join(machines, 'repack-pwd') };
  try {
    const list = await runSpread(['-list'], join(dir, 'spread'), env);
    assert.equal(list.stdout, 'local:this-host:tests/main/show\n', list.stderr);

    const run = await runSpread(['-reuse', '-pass=x'], join(dir, 'spread'), env);
    assert.equal(run.code, 0, stripTime(run.stdout) + run.stderr);
    assert.equal(readFileSync(join(machines, 'repack-pwd'), 'utf8').trim(), realpathSync(dir));
    // The machine's directory is <machines>/<system dir>/rerooted: sent.txt landed in <machines>.
    const sent = readFileSync(join(machines, 'sent.txt'), 'utf8').split('\n');
    assert.ok(sent.includes('at-the-root.txt') && sent.includes('spread') && sent.includes('tests'), sent.join(' '));
    assert.ok(existsSync(join(dir, '.spread-reuse.yaml')), 'the reuse file is at the root');
    assert.ok(!existsSync(join(dir, 'spread/.spread-reuse.yaml')), 'not beside spread.yaml');

    const discard = await runSpread(['-discard'], join(dir, 'spread'), env);
    assert.equal(discard.code, 0, discard.stdout + discard.stderr);
    assert.match(stripTime(discard.stdout), /^Discarding local:this-host/m, 'the machine recorded at the root is found and discarded');
    assert.doesNotMatch(readFileSync(join(dir, '.spread-reuse.yaml'), 'utf8'), /address/);
  } finally {
    removeProject(dir);
    removeProject(machines);
  }
});

test('reroot: a subdirectory is the root; only its entries are sent', async () => {
  const machines = mkdtempSync(join(tmpdir(), 'spread-reroot-machines-'));
  const dir = makeProject({
    'spread.yaml': spreadYaml('integration', machines),
    'integration/tests/main/show/task.yaml': SHOW_CONTENT,
    'integration/data.txt': 'data\n',
    'outside.txt': 'not sent\n',
  });
  try {
    const run = await runSpread(['-pass=x'], dir);
    assert.equal(run.code, 0, stripTime(run.stdout) + run.stderr);
    const sent = readFileSync(join(machines, 'sent.txt'), 'utf8').split('\n').filter((n) => !['', '.', '..'].includes(n));
    assert.deepEqual(sent.sort(), ['data.txt', 'tests']);
    assert.ok(!existsSync(join(dir, `.spread-reuse.${process.pid}.yaml`)));
  } finally {
    removeProject(dir);
    removeProject(machines);
  }
});

test('reroot: a directory that does not exist fails where the original fails, when the suites are listed', async () => {
  const dir = makeProject({ 'spread.yaml': spreadYaml('missing', '/nonexistent'), 'tests/main/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: spread.yaml:9:5: cannot list suite tests/main/: directory missing/tests/main does not exist\n');
  } finally {
    removeProject(dir);
  }
});

test('reroot: an absolute value is appended to the directory of spread.yaml, as Go\'s filepath.Join does', async () => {
  const dir = makeProject({ 'spread.yaml': spreadYaml('/sub', '/nonexistent'), 'sub/tests/main/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.stdout, 'local:this-host:tests/main/a\n', r.stderr);
  } finally {
    removeProject(dir);
  }
});
