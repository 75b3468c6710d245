/**
 * Rendering a script the way the original wraps every script it runs (spec
 * §4.5): strict mode, the working directory, the helpers, the fixed
 * exports, the job's environment, tracing, and the script itself in a
 * subshell reading /dev/null. Pure functions, checked with golden files.
 */
import { exportLine } from '../project/env.js';
import type { Env } from '../project/types.js';
import { FIXED_EXPORTS, LOCAL_HELPERS, REMOTE_HELPERS, SYNC_HELPERS } from './helpers.js';
import { shellQuote } from './shell-words.js';


export interface RenderOptions {
  readonly script: string;
  /** Working directory; omitted for helper commands. */
  readonly dir?: string;
  readonly env: Env;
  /** The login user is not root: scripts run under `sudo -i`, whose variables are dropped. */
  readonly sudo?: boolean;
  /** `set -x` after the exports (the original traces every job script). @default true */
  readonly trace?: boolean;
  /** Define the sync helpers (SIGNAL, BARRIER, ...): a task script of a multi-machine job. @default false */
  readonly sync?: boolean;
}

export function renderScript(o: RenderOptions): string {
  const lines = ['set -eu'];
  if (o.dir) lines.push(`cd "${o.dir}"`);
  if (o.sudo) lines.push('unset SUDO_COMMAND', 'unset SUDO_USER', 'unset SUDO_UID', 'unset SUDO_GID');
  lines.push(...REMOTE_HELPERS, ...(o.sync ? SYNC_HELPERS : []), ...FIXED_EXPORTS, ...o.env.map(exportLine));
  if (o.trace ?? true) lines.push('set -x');
  lines.push('', '(', o.script.trim(), ') < /dev/null', '');
  return lines.join('\n');
}

/** A script run on this host (adhoc allocate/discard, repack): run by `/bin/bash -eu -` in the project dir. */
export function renderLocalScript(o: { readonly script: string; readonly env: Env; readonly trace?: boolean }): string {
  const lines = ['set -eu', ...LOCAL_HELPERS, ...FIXED_EXPORTS, ...o.env.map(exportLine)];
  if (o.trace ?? true) lines.push('set -x');
  lines.push('', '(', o.script.trim(), ') < /dev/null', '');
  return lines.join('\n');
}

/**
 * The shell of -debug/-shell: the job's exports, the helpers that make
 * sense interactively, and the original's prompt, then an interactive bash.
 * Exported into the environment rather than written to root's .bashrc
 * (the original truncates it), so the machine's files are left alone.
 */
export function renderShell(o: { readonly dir: string; readonly env: Env; readonly sudo?: boolean; readonly sync?: boolean }): string {
  const rcLines = [...REMOTE_HELPERS.slice(2), ...(o.sync ? SYNC_HELPERS : []), ...FIXED_EXPORTS, ...o.env.map(exportLine),
    'export PS1="\\$SPREAD_BACKEND:\\$SPREAD_SYSTEM \\${PWD/#\\$SPREAD_PATH/...}# "'];
  const lines = ['set -eu', `cd "${o.dir}"`];
  if (o.sudo) lines.push('unset SUDO_COMMAND SUDO_USER SUDO_UID SUDO_GID');
  // No here-document: older bash writes those to /tmp, which may be full.
  lines.push(STORE_STDIN, `rc=$(printf '%s\\n' ${rcLines.map(shellQuote).join(' ')} | spread_store rc)`, "trap 'rm -f \"$rc\"' EXIT",
    'set +e', '/bin/bash --rcfile "$rc" -i', '');
  return lines.join('\n');
}

/**
 * `spread_store NAME` writes stdin to a new private file and prints its
 * path: in $TMPDIR or /tmp, else /dev/shm, /run or $HOME, so that a full or
 * read-only /tmp does not keep an interactive shell from opening.
 */
export const STORE_STDIN = 'spread_store() { local d f s; s=$(cat; echo .); for d in "${TMPDIR:-/tmp}" /dev/shm /run "$HOME"; do ' +
  'f=$(mktemp "$d/spread-$1.XXXXXXXX" 2>/dev/null) || continue; if printf %s "${s%.}" 2>/dev/null > "$f"; then echo "$f"; return 0; fi; rm -f "$f"; done; return 1; }';
