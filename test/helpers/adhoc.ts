/**
 * Pointing spread projects at test sshd targets through the adhoc backend:
 * the allocate script hands out the targets' addresses round-robin (under a
 * lock, workers allocate concurrently) skipping those marked dead, the
 * discard script records what it threw away, so tests can check that no
 * machine leaked.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import type { SshdTarget } from './sshd.js';

export const ADHOC_ALLOCATE = `exec 9>>"$SPREAD_TEST_ALLOC_DIR/lock"
flock 9
n=$(cat "$SPREAD_TEST_ALLOC_DIR/next" 2>/dev/null || echo 0)
echo $((n + 1)) > "$SPREAD_TEST_ALLOC_DIR/next"
set --
for a in $SPREAD_TEST_ADDRESSES; do
    grep -qxF "$a" "$SPREAD_TEST_ALLOC_DIR/dead" 2>/dev/null || set -- "$@" "$a"
done
[ $# -gt 0 ] || FATAL "no live test machine left"
shift $((n % $#))
echo "$SPREAD_SYSTEM" >> "$SPREAD_TEST_ALLOC_DIR/allocated"
ADDRESS $1
`;

export const ADHOC_DISCARD = `echo "$SPREAD_SYSTEM_ADDRESS" >> "$SPREAD_TEST_ALLOC_DIR/discarded"
`;

export interface AdhocPool {
  /** Environment for the spread process: addresses and the allocation directory. */
  readonly env: NodeJS.ProcessEnv;
  readonly dir: string;
  /** Addresses discarded so far, in order. */
  discarded(): string[];
  /** Systems allocated so far, in order. */
  allocated(): string[];
  /** Stop handing out this address (the machine behind it is gone). */
  markDead(address: string): void;
  remove(): void;
}

export function adhocPool(targets: readonly SshdTarget[]): AdhocPool {
  const dir = mkdtempSync(join(tmpdir(), 'spread-adhoc-'));
  const lines = (name: string): string[] => {
    try {
      return readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  return {
    dir,
    env: { SPREAD_TEST_ALLOC_DIR: dir, SPREAD_TEST_ADDRESSES: targets.map((t) => t.address).join(' ') },
    discarded: () => lines('discarded'),
    allocated: () => lines('allocated'),
    markDead: (address) => appendFileSync(join(dir, 'dead'), `${address}\n`),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** An adhoc backend block for spread.yaml (indented for `backends:`). */
export const adhocBackend = (name: string, systems: string, extra = ''): string => `    ${name}:
        type: adhoc
        allocate: |
${indent(ADHOC_ALLOCATE, 12)}
        discard: |
${indent(ADHOC_DISCARD, 12)}
${extra}        systems:
${indent(systems, 12)}
`;

const indent = (text: string, n: number): string => text.trimEnd().replace(/^/gm, ' '.repeat(n));

/**
 * Switch every non-adhoc backend of a spread.yaml to adhoc on the test targets,
 * keeping names and systems, so job names stay those of the original project.
 */
export function switchToAdhoc(spreadYaml: string): string {
  const doc = parseDocument(spreadYaml);
  const backends = doc.get('backends', true);
  if (!isMap(backends)) throw new Error('no backends map');
  for (const pair of backends.items) {
    const b = pair.value;
    if (!isMap(b)) continue;
    // Adhoc backends of the project itself stay as written (the original's adhoc check greps their output).
    if ((b.get('type') ?? String((pair.key as { value?: unknown }).value)) === 'adhoc') continue;
    for (const key of ['type', 'memory', 'key', 'location', 'allocate', 'discard']) b.delete(key);
    b.set('type', 'adhoc');
    b.set('allocate', ADHOC_ALLOCATE);
    b.set('discard', ADHOC_DISCARD);
  }
  return doc.toString();
}
