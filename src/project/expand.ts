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
import type { Backend, Job, Project, Suite, System, Task } from './types.js';

export function expandJobs(project: Project): Job[] {
  const jobs: Job[] = [];
  const backendNames = project.backends.map((b) => b.name);
  const backends = new Map(project.backends.map((b) => [b.name, b]));
  const systems = new Map(project.backends.map((b) => [b.name, new Map(b.systems.map((s) => [s.name, s]))]));
  const systemNames = new Map(project.backends.map((b) => [b.name, b.systems.map((s) => s.name)]));
  const variants = new VariantCache(project);

  for (const suite of project.suites) {
    for (const task of suite.tasks) {
      if (task.samples < 1) continue;
      for (const bname of evalLists(backendNames, suite.backends, task.backends)) {
        const backend = backends.get(bname);
        if (!backend) continue;
        const bsystems = systems.get(bname)!;
        for (const sysname of evalLists(systemNames.get(bname)!, suite.systems, task.systems)) {
          const system = bsystems.get(sysname);
          if (!system) continue; // a name from a suite or task list that this backend lacks
          const priority = task.priority ?? suite.priority ?? system.priority ?? backend.priority ?? 0;
          const base = `${bname}:${sysname}:${task.name}`;
          for (const variant of variants.of(backend, system, suite, task)) {
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

const plus = (names: readonly string[]): string[] => names.map((n) => `+${n}`);

class VariantCache {
  private readonly prefixes = new Map<string, ListState>();
  private readonly plain = new Map<string, string[]>();
  private readonly projectList: string[];

  constructor(project: Project) {
    const own = envVariants(project.env);
    this.projectList = own.length > 0 ? own : [''];
  }

  /** The variants of one task on one system; "" only when it is the sole one. */
  of(backend: Backend, system: System, suite: Suite, task: Task): string[] {
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
    const taskVariants = envVariants(task.env);
    if (taskVariants.length === 0 && task.variants.length === 0) {
      let values = this.plain.get(key);
      if (!values) this.plain.set(key, (values = dropEmpty(prefix.values())));
      return values;
    }
    return dropEmpty(prefix.copy().apply(plus(taskVariants)).apply(task.variants).values());
  }
}

const dropEmpty = (variants: string[]): string[] =>
  variants.length > 1 ? variants.filter((v) => v !== '') : variants;
