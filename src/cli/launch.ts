/**
 * The `spread` command as installed (dist/bin/spread.cjs): it loads the
 * bundled CLI (dist/bin/spread-bundle.cjs, one CommonJS file) through a V8
 * code cache, so that an invocation does not compile ~1 MB of JavaScript
 * again: that took a third of a small run's start-up (docs/dev/run-cost.md).
 *
 * Written by hand because Node 20 has no compile cache of its own
 * (`module.enableCompileCache()` came in 22.1) and the maintained
 * v8-compile-cache hooks every module and keeps its cache in /tmp; one
 * bundle needs one `vm.Script` and these few lines.
 *
 * The cache lives in `$XDG_CACHE_HOME/spread-ts` (else `~/.cache/spread-ts`),
 * private to the user, one file per kind of invocation (`-list` and the like
 * compile less than a run), named after the Node version and the bundle's
 * size and time, so an upgrade of either starts a new one. It is written
 * once, at exit, when missing or rejected by V8 (for a run, only if the run
 * started: see markRunStarted); anything that goes wrong with it only costs
 * the compile it would have saved. SPREAD_COMPILE_CACHE=off turns it off.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

/**
 * Set by the CLI once a run has started (markRunStarted): a command that
 * stopped before, at a bad flag or a broken spread.yaml, compiled too little
 * of the run's code for its cache to serve the runs after it.
 */
const RUN_STARTED = Symbol.for('spread-ts.run-started');
export const markRunStarted = (): void => {
  (globalThis as Record<symbol, unknown>)[RUN_STARTED] = true;
};

/** What a command compiles: a run reaches far more of the bundle than -list, -h or -version. */
const kindOf = (argv: readonly string[]): string =>
  argv.some((a) => /^--?(list|h|help|version)(=|$)/.test(a)) ? 'list' : 'run';

/** The cache file for this bundle, Node and kind of command; undefined when turned off or homeless. */
export function cacheFile(bundle: string, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env['SPREAD_COMPILE_CACHE'] === 'off') return undefined;
  const home = env['HOME'] || homedir();
  const base = env['XDG_CACHE_HOME'] || (home ? join(home, '.cache') : undefined);
  if (!base) return undefined;
  const { size, mtimeMs } = statSync(bundle);
  return join(base, 'spread-ts', `${process.version}-${process.arch}-${size}-${Math.trunc(mtimeMs)}-${kindOf(argv)}.v8cache`);
}

/** Writes the cache atomically (concurrent runs may race) and drops those of other bundles and Node versions. */
function save(file: string, data: Buffer): void {
  try {
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}`;
    writeFileSync(temp, data, { mode: 0o600 });
    renameSync(temp, file);
    // Also what a run killed while writing left (a temp file of another pid).
    const key = file.replace(/-(list|run)\.v8cache$/, '');
    for (const name of readdirSync(dir)) {
      const other = join(dir, name);
      const stale = /\.v8cache$/.test(name) ? !other.startsWith(key) : /\.v8cache\.\d+$/.test(name);
      if (stale) rmSync(other, { force: true });
    }
  } catch {
    // A read-only or full home: the next run compiles again, nothing else.
  }
}

/** Compiles (or takes from the cache) and runs the bundle as a CommonJS module. */
export function launch(bundle: string, argv: readonly string[] = process.argv.slice(2)): void {
  // The bundle starts with no #! line; wrapped as Node wraps a module, so its require and __dirname are its own.
  const source = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(bundle, 'utf8')}\n})`;
  let file: string | undefined;
  let cached: Buffer | undefined;
  try {
    file = cacheFile(bundle, argv);
    if (file) cached = readFileSync(file);
  } catch {
    // No cache yet.
  }
  const script = new vm.Script(source, { filename: bundle, ...(cached ? { cachedData: cached } : {}) });
  if (file && (!cached || script.cachedDataRejected)) {
    const target = file;
    // At exit the cache holds the functions this command ran, not only the top level.
    const forRuns = kindOf(argv) === 'run';
    process.once('exit', () => {
      if (!forRuns || (globalThis as Record<symbol, unknown>)[RUN_STARTED]) save(target, script.createCachedData());
    });
  }
  const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  const module = { exports: {} };
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
}
