/**
 * The dependency rules of DEVELOPERS.md and style.md §1, read from the
 * sources: cli -> run -> {remote, backends} -> project, cli -> report, and
 * the event types between run and report importing only project types.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/fixture.js';

/** What each layer of src/ may import from the others (itself always allowed). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  project: [],
  // Script output as bytes (bounded): part of the event contract.
  output: ['project'],
  events: ['project', 'output'],
  remote: ['project', 'events', 'output'],
  backends: ['project', 'events', 'output', 'remote'],
  store: ['project', 'events', 'output'],
  sync: ['project', 'events', 'output', 'store'],
  run: ['project', 'events', 'output', 'remote', 'backends', 'store', 'sync'],
  report: ['project', 'events', 'output'],
  cli: ['project', 'events', 'output', 'remote', 'backends', 'store', 'sync', 'run', 'report'],
};

const SRC = join(REPO_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** The layer of a path under src/: its first directory, or the file's own name for top-level files. */
const layerOf = (path: string): string => relative(SRC, path).split('/')[0]!.replace(/\.ts$/, '');

test('each layer imports only the layers below it', () => {
  const problems: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    assert.ok(allowed, `src/${relative(SRC, file)} is in no known layer: add it to ALLOWED`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)) {
      const target = layerOf(join(file, '..', m[1]!.replace(/\.js$/, '.ts')));
      if (target !== from && !allowed.includes(target)) problems.push(`src/${relative(SRC, file)} imports ${m[1]} (${from} must not depend on ${target})`);
    }
  }
  assert.deepEqual(problems, []);
});
