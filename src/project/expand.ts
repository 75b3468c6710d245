/**
 * The job matrix (spec §4.1): for every task, the backends, systems and
 * variants its cascade selects, times its samples. Jobs only point at their
 * levels; their environment is composed on demand, so 60k jobs stay light.
 * The list algebra for variants runs over nine lists; the first seven depend
 * only on (backend, system, suite), so their state is computed once per
 * combination and copied for each task.
 */
import { envVariants } from './env.js';
import { evalLists, ListState } from './list-algebra.js';
import { ConfigError } from './errors.js';
import type { Backend, Instances, Job, Project, Suite, System, Task } from './types.js';

export function expandJobs(project: Project): Job[] {
  const jobs: Job[] = [];
  const backendNames = project.backends.map((b) => b.name);
  const backends = new Map(project.backends.map((b) => [b.name, b]));
  const systems = new Map(project.backends.map((b) => [b.name, new Map(b.systems.map((s) => [s.name, s]))]));
  const systemNames = new Map(project.backends.map((b) => [b.name, b.systems.map((s) => s.name)]));
  const variants = new VariantCache(project);
  // Many tasks share the same lists: evaluate each combination once.
  const listCache = new Map<string, string[]>();
  const cached = (key: string, compute: () => string[]): string[] => {
    let value = listCache.get(key);
    if (!value) listCache.set(key, (value = compute()));
    return value;
  };

  for (const suite of project.suites) {
    for (const task of suite.tasks) {
      if (task.samples < 1) continue;
      const taskBackends = cached(`b\0${suite.name}\0${task.backends.join('\0')}`, () => evalLists(backendNames, suite.backends, task.backends));
      const taskVariants = variants.forTask(task);
      for (const bname of taskBackends) {
        const backend = backends.get(bname);
        if (!backend) continue;
        const bsystems = systems.get(bname)!;
        const sysnames = cached(`s\0${bname}\0${suite.name}\0${task.systems.join('\0')}`, () => evalLists(systemNames.get(bname)!, suite.systems, task.systems));
        for (const sysname of sysnames) {
          const system = bsystems.get(sysname);
          if (!system) continue; // a name from a suite or task list that this backend lacks
          if (task.instances && task.instances.count > system.workers) throw tooFewWorkers(task, task.instances, system);
          const priority = task.priority ?? suite.priority ?? system.priority ?? backend.priority ?? 0;
          const base = `${bname}:${sysname}:${task.name}`;
          for (const variant of variants.of(backend, system, suite, taskVariants)) {
            const name = variant === '' ? base : `${base}:${variant}`;
            for (let sample = 1; sample <= task.samples; sample++) {
              jobs.push({
                name: task.samples > 1 ? `${name}#${sample}` : name,
                project, backend, system, suite, task, variant, sample, priority,
              });
            }
          }
        }
      }
    }
  }
  return jobs;
}

/**
 * The instances of a multi-machine task run at once, one per worker of its
 * system: with fewer workers they could never start together.
 */
const tooFewWorkers = (task: Task, instances: Instances, system: System): ConfigError =>
  new ConfigError(`${task.name} runs on ${instances.count} machines at once (instances) but system ${system.backend}:${system.name} has ` +
    `${system.workers} worker${system.workers === 1 ? '' : 's'} (set workers: ${instances.count} or more on the system, or leave it out of the task's systems)`, instances.where);

const plus = (names: readonly string[]): string[] => names.map((n) => `+${n}`);

interface TaskVariants {
  readonly envPlus: readonly string[];
  readonly variants: readonly string[];
}

class VariantCache {
  private readonly prefixes = new Map<string, ListState>();
  private readonly plain = new Map<string, string[]>();
  private readonly projectList: string[];

  constructor(project: Project) {
    const own = envVariants(project.env);
    this.projectList = own.length > 0 ? own : [''];
  }

  /** A task's own variant lists, computed once per task. */
  forTask(task: Task): TaskVariants {
    return { envPlus: plus(envVariants(task.env)), variants: task.variants };
  }

  /** The variants of one task on one system; "" only when it is the sole one. */
  of(backend: Backend, system: System, suite: Suite, task: TaskVariants): string[] {
    const key = `${backend.name}\0${system.name}\0${suite.name}`;
    let prefix = this.prefixes.get(key);
    if (!prefix) {
      prefix = ListState.empty()
        .apply(this.projectList)
        .apply(plus(envVariants(backend.env))).apply(backend.variants)
        .apply(plus(envVariants(system.env))).apply(system.variants)
        .apply(plus(envVariants(suite.env))).apply(suite.variants);
      this.prefixes.set(key, prefix);
    }
    if (task.envPlus.length === 0 && task.variants.length === 0) {
      let values = this.plain.get(key);
      if (!values) this.plain.set(key, (values = dropEmpty(prefix.values())));
      return values;
    }
    return dropEmpty(prefix.copy().apply(task.envPlus).apply(task.variants).values());
  }
}

const dropEmpty = (variants: string[]): string[] =>
  variants.length > 1 ? variants.filter((v) => v !== '') : variants;
