/**
 * What `spread -list` loads: the bundled command's static imports (what
 * every invocation loads) hold the project loader, and none of what only a
 * run needs: ssh2, tar-stream, Redis, the runner, the reporters. Those come in
 * chunks imported when a run starts. (bench/startup.ts measures the time.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { SPREAD_BIN } from '../helpers/fixture.js';

/** The files loaded with `file`: it and its static imports, transitively. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:^|[;\n])\s*(?:import|export)\s*(?:[^'"();]*?\sfrom\s*)?["'](\.[^"']+)["']/g)) {
    staticClosure(join(dirname(file), m[1]!), seen);
  }
  return seen;
}

test('-list loads no SSH, tar, runner or reporter code: they are imported only when a run starts', () => {
  const loaded = [...staticClosure(SPREAD_BIN)];
  const text = loaded.map((f) => readFileSync(f, 'utf8')).join('\n');
  assert.match(text, /node_modules\/yaml\//, 'the loader (and yaml) are in the static part');
  for (const marker of [/["']ssh2["']/, /["']ioredis["']/, /node_modules\/tar-stream\//, /node_modules\/seedrandom\//, /function runJobs\b/, /function consoleReporter\b/]) {
    assert.doesNotMatch(text, marker, `${marker} is not loaded by -list`);
  }
  // And the run chunk does have them, so the markers are the right ones.
  const all = readFileSync(SPREAD_BIN, 'utf8');
  const run = /import\("(\.\/chunks\/run-[^"]+)"\)/.exec(all)?.[1];
  assert.ok(run, 'the run chunk is imported dynamically');
  const runText = [...staticClosure(join(dirname(SPREAD_BIN), run))].map((f) => readFileSync(f, 'utf8')).join('\n');
  assert.match(runText, /["']ssh2["']/);
  assert.match(runText, /function runJobs\b/);
});
