/** Load a fixture project through the library and list or inspect its jobs. */
import { expandJobs } from '../../src/project/expand.js';
import { evaluateProject } from '../../src/project/evaluate.js';
import type { Evaluated } from '../../src/project/evaluate.js';
import { parseFilter } from '../../src/project/filter.js';
import { loadProject } from '../../src/project/load.js';
import { selectJobs } from '../../src/project/select.js';
import type { Job, Project } from '../../src/project/types.js';
import { HostShell } from '../../src/run/host-command.js';
import { makeProject, removeProject } from './fixture.js';
import type { FixtureFiles } from './fixture.js';
import { join } from 'node:path';

export interface Matrix {
  readonly project: Project;
  readonly jobs: Job[];
  readonly evaluated: Evaluated;
}

export async function matrixOf(files: FixtureFiles, args: readonly string[] = []): Promise<Matrix> {
  const dir = makeProject(files);
  const shell = new HostShell(dir);
  try {
    const { project } = loadProject(join(dir, 'spread.yaml'));
    const all = expandJobs(project);
    const evaluated = await evaluateProject(project, all, (cmd) => shell.run(cmd));
    return { project, jobs: selectJobs(all, parseFilter(args)), evaluated };
  } finally {
    shell.close();
    removeProject(dir);
  }
}

export const namesOf = async (files: FixtureFiles, args: readonly string[] = []): Promise<string[]> =>
  (await matrixOf(files, args)).jobs.map((j) => j.name);
