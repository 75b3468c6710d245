/**
 * The event stream of a large made-up run, for the HTML report's benchmark
 * and its snapd-scale test: `jobs` jobs over suites of 50 tasks, two
 * systems, `workers` machines, seeded random times (prepare, execute,
 * restore), 3% of the jobs failing with a few KB of output and debug
 * output, suite prepares on every suite change, and a history in which 5%
 * of the jobs are flaky. The stream is made up front and carries its own
 * clock, so playing it times only the reporters.
 */
import seedrandom from 'seedrandom';
import { fanOut } from '../../src/events.js';
import type { Reporter, RunEvent } from '../../src/events.js';
import { EMPTY_OUTPUT, outputOf } from '../../src/output.js';
import type { Job } from '../../src/project/types.js';

export interface SyntheticRun {
  readonly jobs: readonly Job[];
  /** What history knew before the run. */
  readonly past: (name: string) => { durationMs?: number; recent: string } | undefined;
  /** Emit the whole run to these reporters. */
  play(reporters: readonly Reporter[]): void;
}

export function syntheticRun(count: number, workers: number, seed = 1): SyntheticRun {
  const rng = seedrandom(String(seed));
  const project = { name: 'synthetic' };
  const backend = { name: 'google' };
  const systems = [{ name: 'ubuntu-24.04-64', backend: 'google' }, { name: 'fedora-41-64', backend: 'google' }];
  const jobs: Job[] = [];
  for (let i = 0; i < count; i++) {
    const system = systems[i % 2]!;
    const n = Math.floor(i / 2);
    const suite = { name: `tests/suite${String(Math.floor(n / 50)).padStart(3, '0')}/` };
    const task = { name: `${suite.name}task${String(n % 50).padStart(2, '0')}`, samples: 1 };
    const variant = n % 7 === 0 ? 'variant' : '';
    jobs.push({ name: `google:${system.name}:${task.name}${variant ? `:${variant}` : ''}`, project, backend, system, suite, task, variant, sample: 1, priority: 0 } as unknown as Job);
  }
  const failing = new Set(jobs.filter(() => rng() < 0.03));
  const flaky = new Set(jobs.filter(() => rng() < 0.05).map((j) => j.name));
  const previous = new Map(jobs.map((j) => [j.name, Math.round(1000 + rng() * 30_000)]));

  const stream = made();
  return {
    jobs,
    past: (name) => ({ durationMs: previous.get(name)!, recent: flaky.has(name) ? 'PPFPPFP' : 'PPPPPPP' }),
    play: (reporters) => {
      let clock = 0;
      const emit = fanOut(reporters, () => clock);
      for (const { at, e } of stream) {
        clock = at;
        emit(e);
      }
    },
  };

  function made(): { at: number; e: RunEvent }[] {
    const out: { at: number; e: RunEvent }[] = [];
    let clock = Date.UTC(2024, 0, 1, 8, 0, 0);
    const run = (e: RunEvent, at: number) => void out.push({ at, e });
    run({ type: 'run-start', jobs, workers, seed }, clock);
    // Each worker takes the next job of its system; events come in time order across workers.
    const lanes = Array.from({ length: workers }, (_, w) => ({ machine: `10.0.${Math.floor(w / 250)}.${w % 250}:22`, system: systems[w % 2]!, free: clock + 5000 + w * 300, suite: '' }));
    for (const lane of lanes) run({ type: 'machine', action: 'connected', machine: `google:${lane.system.name} (${lane.machine})`, address: lane.machine, system: `google:${lane.system.name}` }, lane.free - 1000);
    const queues = systems.map((s) => jobs.filter((j) => j.system === (s as unknown)));
    const cursor = [0, 0];
    const timeline: { at: number; e: RunEvent }[] = [];
    for (;;) {
      const lane = lanes.reduce((a, b) => (b.free < a.free && cursor[systems.indexOf(b.system)]! < queues[systems.indexOf(b.system)]!.length ? b : a),
        lanes.find((l) => cursor[systems.indexOf(l.system)]! < queues[systems.indexOf(l.system)]!.length) ?? lanes[0]!);
      const s = systems.indexOf(lane.system);
      const job = queues[s]![cursor[s]!];
      if (!job) break;
      cursor[s]!++;
      let t = lane.free;
      const ref = (level: 'suite' | 'task', verb: 'preparing' | 'executing' | 'restoring') => ({ machine: lane.machine, job, level, verb, context: level === 'task' ? job.name : `google:${lane.system.name}:${job.suite.name}` });
      if (lane.suite !== job.suite.name) {
        lane.suite = job.suite.name;
        timeline.push({ at: t, e: { type: 'script-start', ...ref('suite', 'preparing'), script: 'prepare', env: [] } });
        t += 2000 + rng() * 8000;
        timeline.push({ at: t, e: { type: 'script-end', ...ref('suite', 'preparing'), ok: true, durationMs: 0, output: EMPTY_OUTPUT } });
      }
      timeline.push({ at: t, e: { type: 'job-start', job, machine: lane.machine } });
      const fails = failing.has(job);
      const output = fails ? Array.from({ length: 60 }, (_, k) => `+ step ${k} of ${job.name} doing something long enough`).join('\n') : '';
      for (const [verb, ms, ok] of [['preparing', 200 + rng() * 2000, true], ['executing', 1000 + rng() * 30_000, !fails], ['restoring', 200 + rng() * 1000, true]] as const) {
        timeline.push({ at: t, e: { type: 'script-start', ...ref('task', verb), script: verb, env: [] } });
        t += ms;
        timeline.push({ at: t, e: { type: 'script-end', ...ref('task', verb), ok, durationMs: ms, output: outputOf(output), ...(ok ? {} : { error: { exitCode: 1 } }) } });
        if (!ok) timeline.push({ at: t, e: { type: 'debug-output', ...ref('task', verb), output: outputOf(`journal of ${job.name}\n${output.slice(0, 800)}`) } });
      }
      timeline.push({ at: t, e: { type: 'result', outcome: fails ? 'task-error' : 'task-done', job } });
      timeline.push({ at: t, e: { type: 'job-end', job, machine: lane.machine, outcome: fails ? 'task-error' : 'task-done', durationMs: t - lane.free } });
      lane.free = t + 50;
    }
    timeline.sort((a, b) => a.at - b.at);
    for (const { at, e } of timeline) run(e, Math.round(at));
    for (const lane of lanes) run({ type: 'machine', action: 'discarding', machine: `google:${lane.system.name} (${lane.machine})`, system: `google:${lane.system.name}` }, lane.free + 500);
    run({ type: 'run-end', interrupted: false }, Math.max(...lanes.map((l) => l.free)) + 1000);
    return out;
  }
}
