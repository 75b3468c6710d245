/** The worker side of parallel-parse.ts: parse the entries it is given, send the results back. */
import { parentPort, workerData } from 'node:worker_threads';
import type { TaskEntry } from './discover.js';
import { parseTaskEntry } from './task-file.js';
import type { TaskOptions } from './task-file.js';

const { entries, options } = workerData as { entries: TaskEntry[]; options: TaskOptions };
parentPort!.postMessage(entries.map((e) => parseTaskEntry(e, options)));
