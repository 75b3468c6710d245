/**
 * Parsing many task files on two threads: YAML parsing dominates loading a
 * large project (snapd: 829 files), and it is plain CPU work. The main
 * thread parses the first part while a worker parses the rest; results come
 * back in order as plain data. Small projects, and any failure to start the
 * worker, parse on the main thread alone.
 */
import { Worker } from 'node:worker_threads';
import type { TaskEntry } from './discover.js';
import { parseTaskEntry } from './task-file.js';
import type { TaskOptions, TaskResult } from './task-file.js';

/** Below this many files a worker's start-up costs more than it saves. */
const PARALLEL_FROM = 150;
/** The main thread's share: a bit over half, as the worker starts late. */
const MAIN_SHARE = 0.55;

export async function parseTaskEntries(entries: readonly TaskEntry[], o: TaskOptions): Promise<TaskResult[]> {
  if (entries.length < PARALLEL_FROM) return entries.map((e) => parseTaskEntry(e, o));
  const split = Math.ceil(entries.length * MAIN_SHARE);
  const rest = entries.slice(split);
  let worker: Worker;
  try {
    worker = new Worker(new URL('./parse-worker.js', import.meta.url), { workerData: { entries: rest, options: o } });
  } catch {
    return entries.map((e) => parseTaskEntry(e, o));
  }
  const theirs = new Promise<TaskResult[] | undefined>((resolve) => {
    worker.once('message', (results: TaskResult[]) => resolve(results));
    worker.once('error', () => resolve(undefined));
    worker.once('exit', () => resolve(undefined));
  });
  const mine = entries.slice(0, split).map((e) => parseTaskEntry(e, o));
  const other = (await theirs) ?? rest.map((e) => parseTaskEntry(e, o));
  void worker.terminate();
  return [...mine, ...other];
}
