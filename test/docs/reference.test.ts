/**
 * The docs cannot drift from what spread reads and says: docs/reference.md is
 * what scripts/gen-reference.mjs makes of the JSON Schemas, every key the
 * loader reads is in a schema, and every page `spread -h` points at exists
 * (with its section).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { REPO_ROOT, runSpread } from '../helpers/fixture.js';

test('docs/reference.md is generated from the schemas and up to date (else: node scripts/gen-reference.mjs)', async () => {
  const { renderReference } = (await import(pathToFileURL(join(REPO_ROOT, 'scripts/gen-reference.mjs')).href)) as { renderReference: () => string };
  assert.equal(readFileSync(join(REPO_ROOT, 'docs/reference.md'), 'utf8'), renderReference());
});

test('every key the loader reads by name is documented in docs/reference.md', () => {
  const reference = readFileSync(join(REPO_ROOT, 'docs/reference.md'), 'utf8');
  const documented = new Set([...reference.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
  const sources = ['load.ts', 'task-file.ts', 'selection-lists.ts'].map((f) => readFileSync(join(REPO_ROOT, 'src/project', f), 'utf8')).join('\n');
  const read = new Set([...sources.matchAll(/\b(?:str|script|list|bool|int|timeout|size|env|map|has|where|raw|items|checkedList)\('([a-z-]+)'/g)].map((m) => m[1]!));
  read.add('environment');
  assert.ok(read.size > 30, `found ${read.size} keys read by name`);
  const missing = [...read].filter((k) => !documented.has(k));
  assert.deepEqual(missing, []);
});

test('spread -h points only at pages and sections that exist', async () => {
  const r = await runSpread(['-h'], REPO_ROOT);
  assert.equal(r.code, 0);
  const links = [...r.stdout.matchAll(/docs\/([\w-]+\.md)(?:#([\w-]+))?/g)];
  assert.ok(links.length >= 3, r.stdout);
  for (const [, page, anchor] of links) {
    const file = join(REPO_ROOT, 'docs', page!);
    assert.ok(existsSync(file), `docs/${page} exists`);
    if (anchor) {
      const anchors = [...readFileSync(file, 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^\w\s-]/g, '').trim().replace(/\s+/g, '-'));
      assert.ok(anchors.includes(anchor), `docs/${page}#${anchor} exists`);
    }
  }
});
