/** YAML files must be UTF-8 (or UTF-16 with a BOM): other bytes are refused where they are, never read as U+FFFD. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeYaml } from '../../src/project/yaml-source.js';
import { makeProject, removeProject, runSpread, SPREAD_YAML } from '../helpers/fixture.js';

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

test('decodeYaml: UTF-8 as is, UTF-16 with a BOM, anything else refused at its line and column', () => {
  assert.equal(decodeYaml('a.yaml', Buffer.from('summary: café ✓\n')), 'summary: café ✓\n');
  assert.equal(decodeYaml('a.yaml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a: é\n', 'utf16le')])), 'a: é\n');
  assert.throws(() => decodeYaml('dir/task.yaml', latin1('summary: x\nexecute: |\n    echo "caf\xe9"\n')),
    { message: 'dir/task.yaml:3:14: invalid UTF-8: byte 0xe9 (save the file as UTF-8)' });
  assert.throws(() => decodeYaml('a.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xc3, 0xa9, 0xc3])), { message: 'a.yaml:1:5: invalid UTF-8: byte 0xc3 (save the file as UTF-8)' }, 'a cut sequence, columns in characters');
  assert.throws(() => decodeYaml('a.yaml', Buffer.from([0xed, 0xa0, 0x80])), /a\.yaml:1:1: invalid UTF-8: byte 0xed/, 'no encoded surrogates');
});

test('a task.yaml or spread.yaml with a Latin-1 byte is refused with file and line, nothing runs', async () => {
  const dir = makeProject({ 'spread.yaml': SPREAD_YAML(), 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    writeFileSync(join(dir, 'tests/a/task.yaml'), latin1('summary: a\nexecute: |\n    echo "d\xe9j\xe0 vu"\n'));
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'error: tests/a/task.yaml:3:12: invalid UTF-8: byte 0xe9 (save the file as UTF-8)\n');
    writeFileSync(join(dir, 'tests/a/task.yaml'), 'summary: a\nexecute: "true"\n');
    writeFileSync(join(dir, 'spread.yaml'), latin1(SPREAD_YAML().replace('project: demo', 'project: demo\n# r\xe9sum\xe9')));
    const top = await runSpread(['-list'], dir);
    assert.equal(top.stderr, 'error: spread.yaml:2:4: invalid UTF-8: byte 0xe9 (save the file as UTF-8)\n');
  } finally {
    removeProject(dir);
  }
});
