/**
 * Fetching a task's artifacts into `<-artifacts dir>/<job name>/` (or its
 * safe form, `:` as `__`, with -artifacts-safe-names) after its
 * last repeat or its failure, before its restore (spec §5.8). Extraction
 * never writes outside that directory. A failed fetch is reported and makes
 * the run unsuccessful, but, unlike the original, does not stop the other
 * jobs: nothing else is lost because one fetch failed.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { safeName } from '../project/safe-names.js';
import type { Job } from '../project/types.js';
import { extractArtifacts } from './artifacts-extract.js';
import type { WorkerEnv } from './level-script.js';
import type { MachineLink } from './machine-link.js';

/** `sub`: a directory under the job's, one per instance of a multi-machine job. */
export async function fetchArtifacts(link: MachineLink, w: WorkerEnv, job: Job, sub?: string): Promise<void> {
  const root = w.options.artifacts;
  if (!root || job.task.artifacts.length === 0) return;
  const name = w.options.artifactsSafeNames ? safeName(job.name) : job.name;
  const dir = sub ? join(root, name, sub) : join(root, name);
  w.emit({ type: 'log', level: 'info', message: `Fetching artifacts of ${job.name}...` });
  try {
    mkdirSync(dir, { recursive: true });
    const tar = await link.session.download(`${link.remotePath}/${job.task.name}`, job.task.artifacts);
    await extractArtifacts(tar, dir, { onWarning: (message) => w.emit({ type: 'log', level: 'info', message: `WARNING: artifacts of ${job.name}: ${message}` }) });
    w.emit({ type: 'artifacts', job, dir });
  } catch (err) {
    const error = (err as Error).message;
    w.emit({ type: 'log', level: 'info', message: `Cannot fetch artifacts of ${job.name}: ${error}` });
    w.emit({ type: 'artifacts', job, dir, error });
  }
}
