/**
 * The log lines of a flake hunt (-repeat-until): each failure that does not
 * match and where its output went, the match, and the closing lines with
 * the runs, the machines, the time and the failure rate. Printed after the
 * console's own line for the same event, before the summary.
 */
import type { EventOf, Reporter, Stamped } from '../events.js';
import { formatDuration } from '../project/duration.js';
import { timestamp } from './console.js';

export function huntReporter(write: (text: string) => void): Reporter {
  const print = (at: number, message: string) => write(`${timestamp(at)} ${message}\n`);
  return {
    'hunt-failure': (e) => {
      if (e.matched) print(e.at, `Failure of ${e.job.name} on ${e.machine} matches -repeat-until: no new run starts; runs under way finish first.`);
      else print(e.at, `Failure of ${e.job.name} on ${e.machine} does not match -repeat-until, repeating${e.file ? ` (output saved to ${e.file})` : ''}...`);
    },
    'hunt-end': (e) => {
      for (const line of huntLines(e)) print(e.at, line);
    },
  };
}

/** The closing lines of a hunt. */
export function huntLines(e: Stamped<EventOf<'hunt-end'>>): string[] {
  const machines = `${e.machines} machine${e.machines === 1 ? '' : 's'}`;
  const rate = e.runs === 0 ? 'no run ended' : `${e.failures} of ${e.runs} run${e.runs === 1 ? '' : 's'} failed (${((100 * e.failures) / e.runs).toFixed(1)}%)`;
  const unmatched = e.failures - (e.match ? 1 : 0);
  const saved = unmatched > 0 ? `; unmatched failures are saved under ${e.dir}` : '';
  if (!e.match) return [`Flake hunt not matched after ${e.runs} run${e.runs === 1 ? '' : 's'} on ${machines} in ${formatDuration(e.durationMs)}; ${rate}${saved}.`];
  const { job, machine } = e.match;
  const where = `${job.backend.name}:${job.system.name} (${machine})`;
  return [
    `Flake hunt matched after ${e.runs} run${e.runs === 1 ? '' : 's'} on ${machines} in ${formatDuration(e.durationMs)}: ${job.name} on ${machine}; ${rate}${saved}.`,
    e.match.kept
      ? `Kept ${where} as the failure left it; open a shell there with: spread -reuse -shell ${job.name}`
      : `Could not keep ${where} for -reuse (see above).`,
    ...(e.match.workdir ? [`Working directory of ${job.name} on ${machine}: ${e.match.workdir}`] : []),
  ];
}
