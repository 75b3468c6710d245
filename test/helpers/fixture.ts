/** Temporary projects on disk and a way to run the real `spread` binary on them. */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/helpers -> repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The `spread` command as installed: the bundle package.json's `bin` names. */
export const SPREAD_BIN = join(REPO_ROOT, 'dist/bin/spread.cjs');
/**
 * The shared conformance corpus and spec: beside the repository as in the
 * workspace (`../shared`), or where SPREAD_SHARED_DIR says, or /work/shared
 * for a clone made elsewhere.
 */
export const SHARED = [process.env['SPREAD_SHARED_DIR'], resolve(REPO_ROOT, '../shared'), '/work/shared']
  .find((dir): dir is string => dir !== undefined && existsSync(join(dir, 'conformance'))) ?? resolve(REPO_ROOT, '../shared');

/** Files by relative path; a value `{ symlink: target }` makes a symlink. */
export type FixtureFiles = Record<string, string | { symlink: string }>;

export function makeProject(files: FixtureFiles, prefix = 'spread-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir: string, files: FixtureFiles): void {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof content === 'string') writeFileSync(full, content);
    else symlinkSync(content.symlink, full);
  }
}

export const removeProject = (dir: string): void => rmSync(dir, { recursive: true, force: true });

export interface SpreadResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The test process's environment without what would change spread's log: CI log markers. */
export const baseEnv = (): NodeJS.ProcessEnv => {
  const { GITHUB_ACTIONS: _g, TRAVIS: _t, ...rest } = process.env;
  return rest;
};

export const runSpread = async (args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<SpreadResult> => {
  const r = await runSpreadBytes(args, cwd, env);
  return { ...r, stdout: r.stdout.toString() };
};

/** spread's output without the timestamps that start its log lines. */
export const stripTime = (s: string): string => s.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /gm, '');

/** A minimal valid spread.yaml with the given extra text appended. */
export const SPREAD_YAML = (extra = ''): string => `project: demo
path: /remote/demo
backends:
    lxd:
        systems: [ubuntu-16.04]
suites:
    tests/:
        summary: Tests
${extra}`;

export interface SpreadBytesResult {
  readonly code: number;
  /** stdout as spread wrote it, byte for byte. */
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** runSpread, keeping stdout as bytes (output that is not UTF-8 must arrive as it was printed). */
export function runSpreadBytes(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<SpreadBytesResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [SPREAD_BIN, ...args], { cwd, env: { ...baseEnv(), ...env }, maxBuffer: 256 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolvePromise({ code, stdout, stderr: stderr.toString() });
    });
  });
}
