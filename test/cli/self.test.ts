/** The repository's own spread.yaml: spread runs its examples with itself (local backend). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPO_ROOT, runSpread } from '../helpers/fixture.js';

test('spread.yaml at the top of the repository passes: the project tests itself', async () => {
  const r = await runSpread(['-v'], REPO_ROOT);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^\S+ \S+ Found .*\/spread\.yaml\.$/m, '-v says which project file it found');
  assert.match(r.stdout, /Successful tasks: 2\n.* Aborted tasks: 0\n$/);
});
