import assert from 'node:assert/strict';
import { test } from 'node:test';
import { docExamples } from '../helpers/doc-examples.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const examples = docExamples('matrix.md');

test('docs/matrix.md has worked examples', () => {
  assert.ok(examples.length >= 6);
  assert.ok(examples.every((e) => e.commands.length > 0 && Object.keys(e.files).length > 0));
});

for (const example of examples) {
  test(`docs/matrix.md: ${example.title}`, async () => {
    const dir = makeProject(example.files);
    try {
      for (const { args, output } of example.commands) {
        const r = await runSpread(args, dir);
        assert.equal(r.stderr, '', `spread ${args.join(' ')}`);
        assert.equal(r.stdout, output, `spread ${args.join(' ')}`);
      }
    } finally {
      removeProject(dir);
    }
  });
}
