/** The records a shared run keeps stand for the events they came from: each kind goes there and back unchanged. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunEvent } from '../../src/events.js';
import { EMPTY_OUTPUT, outputOf } from '../../src/output.js';
import { toEntry, toEvent } from '../../src/run/stored-events.js';
import { contractJobs } from '../store/contract.js';

test('every event a summary or report needs survives the trip through the store', async () => {
  const jobs = await contractJobs();
  const job = jobs[3]!;
  const events: RunEvent[] = [
    { type: 'job-start', job, machine: 'm1' },
    { type: 'script-end', job, machine: 'm1', level: 'task', verb: 'executing', context: job.name, ok: false, durationMs: 12, output: outputOf(Buffer.from('+ false \xff\n', 'latin1')), error: { message: 'boom' } },
    { type: 'result', job, outcome: 'task-error' },
    { type: 'script-end', job, machine: 'm1', level: 'task', verb: 'restoring', context: job.name, ok: false, durationMs: 3, output: outputOf('x'), error: { exitCode: 1 }, reason: 'exit status 1' },
    { type: 'result', job, outcome: 'task-abort', why: { kind: 'error', message: 'not run: cannot allocate x' } },
    { type: 'artifacts', job, dir: 'out/x', error: 'cannot fetch' },
    { type: 'job-end', job, machine: 'm1', outcome: 'task-error', durationMs: 40 },
    { type: 'job-retry', job, lostRunner: 'host-1-abc' },
  ];
  for (const e of events) {
    const entry = toEntry(e, 3, 'runner-a', 1000);
    assert.ok(entry, e.type);
    const back = toEvent(JSON.parse(JSON.stringify(entry)), jobs);
    assert.deepEqual(back, { ...e, at: 1000 }, e.type);
    assert.equal((back as { job: unknown }).job, job, 'the very Job object, found by index');
  }
  assert.equal(toEntry({ type: 'script-end', job, machine: 'm', level: 'suite', verb: 'preparing', context: '', ok: true, durationMs: 1, output: EMPTY_OUTPUT }, 3, 'r', 1), undefined, 'passing scripts above the task are not kept');
  const passed = { type: 'script-end', job, machine: 'm', level: 'task', verb: 'executing', context: '', ok: true, durationMs: 1, output: outputOf('out') } as const;
  assert.deepEqual(toEvent(JSON.parse(JSON.stringify(toEntry(passed, 3, 'r', 1))), jobs), { ...passed, at: 1 }, "a task's passing scripts are kept, for their output in JUnit");
  assert.equal(toEntry({ type: 'log', level: 'info', message: 'x' }, 3, 'r', 1), undefined);
  assert.throws(() => toEvent({ kind: 'result', job: jobs.length, at: 1, outcome: 'task-done' }, jobs), /refers to job/);
});
