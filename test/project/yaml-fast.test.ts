/**
 * The fast path for plain task.yaml files (src/project/yaml-fast.ts) against
 * the `yaml` package it stands in for: whenever it accepts a text, it builds
 * the same nodes (classes, values, scalar types, sources, start offsets and
 * line starts); whenever the package finds an error, the fast path declines.
 * Checked on every YAML file of the conformance corpora, on edge cases, and
 * on seeded random documents built from the shapes it handles.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import seedrandom from 'seedrandom';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node, Pair } from 'yaml';
import { parseFast } from '../../src/project/yaml-fast.js';
import { SHARED } from '../helpers/fixture.js';

function difference(a: unknown, b: unknown, path: string): string | undefined {
  if (a === null || b === null || a === undefined || b === undefined) return a === b ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
  if (isScalar(a) !== isScalar(b) || isMap(a) !== isMap(b) || isSeq(a) !== isSeq(b)) return `${path}: different kinds`;
  const [na, nb] = [a as Node, b as Node];
  if (na.range?.[0] !== nb.range?.[0]) return `${path}: starts at ${na.range?.[0]} vs ${nb.range?.[0]}`;
  if (isScalar(a) && isScalar(b)) {
    const value = (v: unknown) => (v instanceof Date ? v.getTime() : v);
    if (!Object.is(value(a.value), value(b.value))) return `${path}: value ${String(a.value)} vs ${String(b.value)}`;
    if (a.type !== b.type || a.source !== b.source || a.format !== b.format) return `${path}: type/source/format ${a.type} ${JSON.stringify(a.source)} vs ${b.type} ${JSON.stringify(b.source)}`;
    return undefined;
  }
  const [ia, ib] = [(a as { items: unknown[] }).items, (b as { items: unknown[] }).items];
  if (ia.length !== ib.length) return `${path}: ${ia.length} vs ${ib.length} items`;
  if (isSeq(a) && Boolean(a.flow) !== Boolean((b as { flow?: boolean }).flow)) return `${path}: flow differs`;
  for (let i = 0; i < ia.length; i++) {
    const d = isMap(a)
      ? difference((ia[i] as Pair).key, (ib[i] as Pair).key, `${path}.<key ${i}>`) ?? difference((ia[i] as Pair).value, (ib[i] as Pair).value, `${path}.${String(((ia[i] as Pair).key as { value: unknown }).value)}`)
      : difference(ia[i], ib[i], `${path}[${i}]`);
    if (d) return d;
  }
  return undefined;
}

/** undefined when the fast path agrees with the package (or declines); else what differs. */
function check(text: string): { fast: boolean; problem?: string } {
  const fast = parseFast(text);
  const lines = new LineCounter();
  const doc = parseDocument(text, { version: '1.1', lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (!fast) return { fast: false };
  if (doc.errors.length > 0) return { fast: true, problem: `accepted a text the package rejects (${doc.errors[0]!.message.split('\n')[0]})` };
  const d = difference(fast.contents, doc.contents, '');
  if (d) return { fast: true, problem: d };
  if (JSON.stringify(fast.lines.lineStarts) !== JSON.stringify(lines.lineStarts)) return { fast: true, problem: 'line starts differ' };
  return { fast: true };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return [];
    return st.isDirectory() ? yamlFiles(path) : name.endsWith('.yaml') ? [path] : [];
  });
}

test('on the conformance corpora, the fast path reads most files and builds exactly what the package builds', () => {
  const files = yamlFiles(join(SHARED, 'conformance'));
  assert.ok(files.length > 800, `the corpus has ${files.length} YAML files`);
  let fast = 0;
  const problems: string[] = [];
  for (const file of files) {
    const r = check(readFileSync(file, 'utf8'));
    if (r.fast) fast++;
    if (r.problem) problems.push(`${file}: ${r.problem}`);
  }
  assert.deepEqual(problems, []);
  assert.ok(fast / files.length > 0.9, `the fast path read ${fast} of ${files.length} files`);
});

const EDGES = [
  '', '# only a comment\n', 'summary: x', 'summary: x\n', 'a:\nb: 1\n', 'a: \nb:\n', 'a: ~\nb: null\nc: Null\n',
  'y: yes\nn: no\non: off\nTrue: FALSE\n', 'a: 1\nb: 0755\nc: 0x1F\nd: 1_000\ne: 1.10\nf: .inf\ng: -.5\nh: 1e3\ni: 190:20:30\n',
  'date: 2024-01-31\nts: 2001-12-14t21:59:43.10-05:00\n', 'url: http://example.com:80/x\n', 'a: b#c\nd: e # comment\n',
  "q: 'it''s'\nd: \"plain\"\ne: \"esc\\n\"\n", "k: 'a' # c\n", 'k: "a" x\n', 'k: a: b\n', 'k: a:\n', 'k: -a\nl: - a\n',
  'environment:\n    A: 1\n    B/x,y: "two"\n    C:\n', 'env:\n  A: 1\n   B: 2\n', 'list:\n- a\n- b\nnext: 1\n', 'list:\n  - a\n  - "b"\n  -  c\n',
  'list: [a, b, c]\n', 'list: [ a ,b ]\n', 'list: []\n', 'list: [a, b,]\n', 'list: [a, [b]]\n', 'list: [a, {b: c}]\n', 'list: [a\n',
  'execute: |\n    echo a\n\n    echo b\n', 'execute: |-\n  x\n', 'execute: |+\n  x\n\n\n', 'execute: |\n  x\n\n\nnext: 1\n',
  'execute: |\n\n  x\n', 'execute: |\n  x\n   y\n  z\n', 'execute: |\n    x\n  y\n', 'execute: |\n', 'execute: |\nnext: 1\n',
  'execute: |2\n  x\n', 'execute: >\n  a\n  b\n', 'execute: | # comment\n  x\n', 'execute: |\n  x\n  \n', 'execute: |\n  x\n      \n',
  'a: multi\n  line\n', 'a: x\n# c\n  y\n', 'a: &x 1\nb: *x\n', 'a: !!str 1\n', '<<: {a: 1}\n', 'a: 1\na: 2\n', '--- \na: 1\n',
  'a:\n  - x: 1\n', '- a\n', '  a: 1\n', 'a: 1\n b: 2\n', 'a: "x\n  y"\n', 'a: {b: 1}\n', '? a\n: b\n', 'a: [b, c] # note\n', 'a: [b, c] x\n',
  'kill-timeout: 10m\npriority: 100\nmanual: true\nsamples: 3\nartifacts: [out/, logs]\n', 'a: \'\'\nb: ""\n', 'a: x  \n', 'a:    x\n',
];

test('edge cases: the fast path agrees with the package or declines', () => {
  const problems = EDGES.map((text) => ({ text, ...check(text) })).filter((r) => r.problem).map((r) => `${JSON.stringify(r.text)}: ${r.problem}`);
  assert.deepEqual(problems, []);
  // And it does take the plain shapes it is for.
  for (const text of ['summary: x\n', 'list: [a, b, c]\n', 'execute: |\n    echo a\n\n    echo b\n', 'environment:\n    A: 1\n']) assert.ok(parseFast(text), text);
});

test('seeded random documents of the shapes it handles: agreement or decline, never a different reading', () => {
  const rng = seedrandom('yaml-fast');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const scalars = ['x', 'two words', '1', '0.5', 'yes', 'No', '~', '', "'q'", '"d"', 'a#b', 'a # c', '-1', 'http://h:1', '2024-02-03', 'a:b', ' lead', 'trail ', '[a, b]', '[]', '|', '|-', '|+'];
  const keys = ['summary', 'execute', 'A', 'B/x,y', 'y', '1', 'kill-timeout', 'a b'];
  let fast = 0;
  const problems: string[] = [];
  for (let n = 0; n < 3000; n++) {
    const lines: string[] = [];
    const entries = 1 + Math.floor(rng() * 5);
    for (let e = 0; e < entries; e++) {
      const key = pick(keys);
      const kind = rng();
      if (kind < 0.55) {
        lines.push(`${key}:${pick([' ', '  ', ''])}${pick(scalars)}`);
        if (rng() < 0.3) lines.push(pick(['  more', '    echo hi', '', '  ', '# c', '  # c', '']));
      } else if (kind < 0.75) {
        lines.push(`${key}:`);
        const ind = pick(['', '  ', '    ']);
        for (let i = 0; i < 1 + Math.floor(rng() * 3); i++) lines.push(`${ind}- ${pick(scalars)}`);
      } else {
        lines.push(`${key}:`);
        const ind = pick(['  ', '    ', ' ']);
        for (let i = 0; i < 1 + Math.floor(rng() * 3); i++) lines.push(`${ind}${pick(keys)}: ${pick(scalars)}`);
      }
    }
    const text = lines.join('\n') + pick(['\n', '', '\n\n']);
    const r = check(text);
    if (r.fast) fast++;
    if (r.problem) problems.push(`${JSON.stringify(text)}: ${r.problem}`);
  }
  assert.deepEqual(problems.slice(0, 10), []);
  assert.ok(fast > 300, `the fast path read ${fast} of 3000 documents`);
});
