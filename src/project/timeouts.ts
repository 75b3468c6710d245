/**
 * warn-timeout and kill-timeout of a script (spec §5.4): the first level
 * that sets one, looking outward from the script's own level; 5m and 15m
 * when none does; `Infinity` when set to -1.
 */
import type { Job, Level, Timeouts } from './types.js';

export const DEFAULT_WARN_MS = 5 * 60_000;
export const DEFAULT_KILL_MS = 15 * 60_000;

export interface ScriptTimeouts {
  readonly warnMs: number;
  readonly killMs: number;
}

function levelsFrom(job: Job, level: Level): Timeouts[] {
  const all: Timeouts[] = [job.task, job.suite, job.backend, job.project];
  return all.slice({ task: 0, suite: 1, backend: 2, project: 3 }[level]);
}

export function timeoutsFor(job: Job, level: Level): ScriptTimeouts {
  const levels = levelsFrom(job, level);
  return resolveTimeouts(
    levels.find((l) => l.warnTimeout !== 0)?.warnTimeout ?? 0,
    levels.find((l) => l.killTimeout !== 0)?.killTimeout ?? 0,
  );
}

/** Defaults for unset values; a kill that is a multiple of the warning comes 1s early, so the two never race. */
export function resolveTimeouts(warn: number, kill: number): ScriptTimeouts {
  const warnMs = warn === 0 ? DEFAULT_WARN_MS : warn;
  let killMs = kill === 0 ? DEFAULT_KILL_MS : kill;
  if (Number.isFinite(warnMs) && Number.isFinite(killMs) && killMs % warnMs === 0) killMs -= 1000;
  return { warnMs, killMs };
}
