/**
 * Runners of a shared run, each on a pool of test machines of its own:
 * `spread` processes with the pool's addresses in their environment
 * (test/helpers/adhoc.ts). With POOL_ALLOCATE, the project's adhoc backend
 * hands out each machine of the runner's pool to one worker at a time (a
 * worker beyond the pool gets none and ends, as with a cloud quota), back
 * to the pool when discarded: so a runner with one machine and another with
 * two hold 3 machines of one system between them, whatever `workers:` says.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { adhocPool } from './adhoc.js';
import type { AdhocPool } from './adhoc.js';
import { SPREAD_BIN } from './fixture.js';
import type { SshdTarget } from './sshd.js';

export const POOL_ALLOCATE = `exec 9>>"$SPREAD_TEST_ALLOC_DIR/lock"
flock 9
for a in $SPREAD_TEST_ADDRESSES; do
    if ! grep -qxF "$a" "$SPREAD_TEST_ALLOC_DIR/inuse" 2>/dev/null; then
        echo "$a" >> "$SPREAD_TEST_ALLOC_DIR/inuse"
        echo "$SPREAD_SYSTEM" >> "$SPREAD_TEST_ALLOC_DIR/allocated"
        ADDRESS "$a"
        exit 0
    fi
done
FATAL "no free machine in this runner's pool"`;

export const POOL_DISCARD = `echo "$SPREAD_SYSTEM_ADDRESS" >> "$SPREAD_TEST_ALLOC_DIR/discarded"
exec 9>>"$SPREAD_TEST_ALLOC_DIR/lock"
flock 9
grep -vxF "$SPREAD_SYSTEM_ADDRESS" "$SPREAD_TEST_ALLOC_DIR/inuse" > "$SPREAD_TEST_ALLOC_DIR/inuse.new" || true
mv "$SPREAD_TEST_ALLOC_DIR/inuse.new" "$SPREAD_TEST_ALLOC_DIR/inuse"`;

const indent = (text: string, n: number): string => text.trim().replace(/^/gm, ' '.repeat(n));

/** An adhoc backend `name` over the runner's pool, for `backends:` in spread.yaml, with `systems` (YAML, indented by the caller's 0). */
export const poolBackend = (name: string, systems: string): string => `    ${name}:
        type: adhoc
        allocate: |
${indent(POOL_ALLOCATE, 12)}
        discard: |
${indent(POOL_DISCARD, 12)}
        systems:
${indent(systems, 12)}
`;

export interface PoolRunner {
  readonly child: ChildProcess;
  readonly pool: AdhocPool;
  out(): string;
  /** Resolves with the first match in the output so far or to come; rejects if the runner ends first. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  readonly exited: Promise<number>;
}

/** A spread runner in `dir` with `args`, on its own pool of `machines`. */
export function startPoolRunner(dir: string, args: readonly string[], machines: readonly SshdTarget[]): PoolRunner {
  const pool = adhocPool(machines);
  // Without CI log markers, which would change the log.
  const { GITHUB_ACTIONS: _g, TRAVIS: _t, ...env } = process.env;
  const child = spawn(process.execPath, [SPREAD_BIN, ...args], { cwd: dir, env: { ...env, ...pool.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number>((resolve) => child.once('close', (code, signal) => {
    for (const w of [...waiters]) w();
    resolve(code ?? (signal ? 128 : 1));
  }));
  const waitFor = (re: RegExp) => new Promise<RegExpMatchArray>((resolve, reject) => {
    const check = () => {
      const m = re.exec(out);
      if (m) {
        waiters.delete(check);
        resolve(m);
      } else if (child.exitCode !== null || child.signalCode !== null) {
        waiters.delete(check);
        reject(new Error(`runner ended before ${re}:\n${out}`));
      }
    };
    waiters.add(check);
    check();
  });
  return { child, pool, out: () => out, waitFor, exited };
}
