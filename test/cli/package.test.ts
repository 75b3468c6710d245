/**
 * spread-ts installs like any Node CLI: `npm pack` makes a package with the
 * bundled command, the schemas and the docs; installing it globally into a
 * prefix, or as a dev dependency of a project, gives a `spread` that lists
 * and runs a project that has nothing to do with this repository.
 * (The package is packed from the dist/ this test run built: packing with
 * its prepack build here would rebuild dist/ under the other tests' feet.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeProject, removeProject, REPO_ROOT, stripTime } from '../helpers/fixture.js';

const run = promisify(execFile);
const npm = (args: string[], cwd: string) => run('npm', ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...args], { cwd, maxBuffer: 16 << 20 });
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const USER_PROJECT = {
  'spread.yaml': `project: elsewhere
path: /elsewhere
environment: &env
    GREETING: hello
backends:
    local:
        systems:
            - this-host:
                environment: *env
suites:
    checks/:
        summary: checks
`,
  'checks/greet/task.yaml': 'summary: greet\nexecute: test "$GREETING" = hello\n',
  'checks/sum/task.yaml': 'summary: sum\nexecute: test $((1 + 1)) = 2\n',
};

let scratch: string;
let tarball: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'spread-package-'));
  await npm(['pack', '--ignore-scripts', '--pack-destination', scratch], REPO_ROOT);
  tarball = join(scratch, readdirSync(scratch).find((n) => n.endsWith('.tgz'))!);
});
after(() => rmSync(scratch, { recursive: true, force: true }));

test('the package holds the bundled command, the schemas and the docs, and no sources or tests', async () => {
  const { stdout } = await run('tar', ['tzf', tarball]);
  const files = stdout.trim().split('\n');
  for (const f of ['package/dist/bin/spread.cjs', 'package/dist/bin/spread-bundle.cjs', 'package/schemas/spread.schema.json', 'package/schemas/task.schema.json', 'package/docs/reference.md', 'package/README.md']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  assert.deepEqual(files.filter((f) => /^package\/(src|test|bench)\/|^package\/dist\/(src|test|bench)\//.test(f)), []);
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['prepack'], 'npm run build', 'npm pack builds first');
});

test('npm install -g into a prefix: spread -version, -list and a run in a project outside the repository', { timeout: 300_000 }, async () => {
  const prefix = join(scratch, 'prefix');
  await npm(['install', '-g', '--prefix', prefix, tarball], scratch);
  const spread = join(prefix, 'bin/spread');
  const project = makeProject(USER_PROJECT, 'spread-user-');
  try {
    assert.equal((await run(spread, ['-version'], { cwd: project })).stdout, `spread-ts ${VERSION}\n`);
    assert.equal((await run(spread, ['-list'], { cwd: project })).stdout, 'local:this-host:checks/greet\nlocal:this-host:checks/sum\n');
    const { stdout } = await run(spread, ['-pass=x'], { cwd: project });
    assert.match(stripTime(stdout), /^Successful tasks: 2$/m);
  } finally {
    removeProject(project);
  }
});

test('npm install -D in a project, then npx spread', { timeout: 300_000 }, async () => {
  const project = makeProject({ ...USER_PROJECT, 'package.json': '{ "name": "user-project", "version": "1.0.0", "private": true }\n' }, 'spread-user-');
  try {
    await npm(['install', '-D', tarball], project);
    assert.equal((await run('npx', ['--no-install', 'spread', '-list'], { cwd: project })).stdout, 'local:this-host:checks/greet\nlocal:this-host:checks/sum\n');
  } finally {
    removeProject(project);
  }
});
