/** Live progress counts, including a flake hunt's runs of one job on several machines at once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fanOut } from '../../src/events.js';
import type { Job } from '../../src/project/types.js';
import { progressReporter } from '../../src/report/progress.js';
import type { ProgressState } from '../../src/report/progress.js';

test('a job run on two machines at once counts as running until both runs end, then done once', () => {
  const job = { name: 'local:a:tests/flaky', task: { name: 'tests/flaky' } } as unknown as Job;
  let state: ProgressState | undefined;
  const emit = fanOut([progressReporter((s) => void (state = s), () => 0)], () => 0);
  emit({ type: 'run-start', jobs: [job], workers: 2, seed: 1 });
  emit({ type: 'job-start', job, machine: 'm1' });
  emit({ type: 'job-start', job, machine: 'm2' });
  assert.equal(state!.running.length, 2);
  emit({ type: 'result', outcome: 'task-error', job });
  emit({ type: 'job-end', job, machine: 'm1', outcome: 'task-error', durationMs: 5 });
  assert.deepEqual([state!.running.length, state!.passed + state!.failed], [1, 0], 'still running on m2');
  emit({ type: 'result', outcome: 'task-done', job });
  emit({ type: 'job-end', job, machine: 'm2', outcome: 'task-done', durationMs: 5 });
  assert.deepEqual([state!.running.length, state!.failed, state!.passed], [0, 1, 0]);
});
