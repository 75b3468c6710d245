/**
 * JUnit XML (`-junit=FILE`), the report CI systems read: a testsuite per
 * `backend:system:suite/`, a testcase per job (named by task, variant and
 * sample), failures with the original's error text and the output, aborted
 * jobs as skipped with the failure that stopped them when there was one.
 */
import { resolve } from 'node:path';
import type { Reporter } from '../events.js';
import { jobStatus, recordRun } from './job-results.js';
import type { JobResult, RunRecord } from './job-results.js';
import { byCodeUnit } from '../project/env.js';

/** XML 1.0 cannot carry most control characters, even escaped (terminal colours in outputs). */
const printable = (s: string): string => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
const escape = (s: string): string =>
  printable(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const cdata = (s: string): string => `<![CDATA[${printable(s).replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
const seconds = (ms: number): string => (ms / 1000).toFixed(3);

function testcase(r: JobResult): string {
  const { job } = r;
  const name = `${job.task.name.slice(job.suite.name.length)}${job.variant ? `:${job.variant}` : ''}${job.task.samples > 1 ? `#${job.sample}` : ''}`;
  const head = `    <testcase name="${escape(name)}" classname="${escape(`${job.backend.name}:${job.system.name}:${job.suite.name}`)}" time="${seconds(r.durationMs)}"`;
  const status = jobStatus(r);
  const f = r.failure;
  // The last line of a framed output is usually the command that failed.
  const message = f ? `Error ${f.verb} ${f.context} : ${f.error.trim().split('\n').filter((l) => l !== '' && l !== '-----').pop() ?? ''}` : '';
  // Jenkins' attachments plugin links files named so in system-out.
  const out = r.log ? `\n      <system-out>${escape(`[[ATTACHMENT|${resolve(r.log)}]]`)}</system-out>` : '';
  if (status === 'passed') return out ? `${head}>${out}\n    </testcase>` : `${head}/>`;
  if (status === 'failed') return `${head}>\n      <failure message="${escape(message)}" type="${escape(f?.verb ?? 'failed')}">${cdata(f?.output ?? '')}</failure>${out}\n    </testcase>`;
  return `${head}>\n      <skipped message="${escape(f ? `aborted: ${message}` : 'aborted')}"/>${out}\n    </testcase>`;
}

export function renderJunit(record: RunRecord): string {
  const bySuite = new Map<string, JobResult[]>();
  for (const r of record.jobs.values()) {
    const key = `${r.job.backend.name}:${r.job.system.name}:${r.job.suite.name}`;
    bySuite.set(key, [...(bySuite.get(key) ?? []), r]);
  }
  const count = (rs: JobResult[], s: string) => rs.filter((r) => jobStatus(r) === s).length;
  const all = [...record.jobs.values()];
  const suites = [...bySuite.entries()].sort(([a], [b]) => byCodeUnit(a, b)).map(([name, rs]) => {
    const time = rs.reduce((t, r) => t + r.durationMs, 0);
    return `  <testsuite name="${escape(name)}" tests="${rs.length}" failures="${count(rs, 'failed')}" errors="0" skipped="${count(rs, 'aborted')}" time="${seconds(time)}">\n${rs.map(testcase).join('\n')}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="spread" tests="${all.length}" failures="${count(all, 'failed')}" errors="0" skipped="${count(all, 'aborted')}" time="${seconds(record.endedAt - record.startedAt)}">\n${suites.join('\n')}\n</testsuites>\n`;
}

export const junitReporter = (write: (xml: string) => void, logs?: string): Reporter => recordRun((record) => write(renderJunit(record)), Date.now, logs);
