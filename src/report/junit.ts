/**
 * JUnit XML (`-junit=FILE`), the report CI systems read, shaped to the
 * Jenkins xUnit plugin's junit-10.xsd (which GitLab, GitHub reporters and
 * pytest's habits agree with):
 *
 * - `<testsuites>` carries only name, tests, failures, errors and time (the
 *   schema has no `skipped` there); a `<testsuite>` per `backend:system:suite/`
 *   with tests, failures, errors, skipped, time, timestamp and hostname.
 * - A `<testcase>` per job: `<failure>` when the task's own prepare, execute
 *   or restore failed, `<error>` when the infrastructure kept it from running
 *   or cut it (allocation, connection, project/backend/suite scripts, a
 *   second signal), `<skipped>` only when it really did not run (the run was
 *   interrupted before it, -abend), each with its reason as `message`, then
 *   `<system-out>` with its scripts' output.
 * - A project, backend or suite restore that failed is a testcase of its own
 *   (`[suite restore]`, ...) with an `<error>`: the jobs before it passed.
 * - classname is `backend:system.suite/`: Jenkins splits a classname at its
 *   last dot into package and class, so the package is `backend:system` and
 *   the class the suite; dots in the suite's name become `_` for that reason.
 *
 * Text has terminal escapes removed and characters XML 1.0 cannot carry
 * dropped; times are seconds with 3 decimals; timestamps are UTC, written
 * `YYYY-MM-DDTHH:MM:SS` as Ant and Jenkins expect.
 */
import { resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import type { Reporter } from '../events.js';
import { byCodeUnit } from '../project/env.js';
import { failureLine, jobStatus, recordRun, statusReason } from './job-results.js';
import type { JobResult, LevelFailure, RunRecord } from './job-results.js';

export interface JunitOptions {
  /** The machine spread ran on, for `hostname`. */
  readonly hostname: string;
  /** The -logs directory: each job's `system-out` links its file. */
  readonly logs?: string;
}

/** Characters XML 1.0 allows, even escaped: tab, newlines, and the rest above U+001F but surrogates and U+FFFE/F. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
export const xmlText = (s: string): string => stripVTControlCharacters(s).replace(NOT_XML, '');
const attr = (s: string): string =>
  xmlText(s).replace(/[&<>"\n\r\t]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\n': '&#10;', '\r': '&#13;', '\t': '&#9;' })[c]!);
const cdata = (s: string): string => `<![CDATA[${xmlText(s).replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
const seconds = (ms: number): string => (Math.max(0, ms) / 1000).toFixed(3);
export const junitTimestamp = (ms: number): string => new Date(ms).toISOString().slice(0, 19);

/** `backend:system.suite/` (see above). */
export const junitClassname = (backend: string, system: string, suite: string): string => `${backend}:${system}.${suite.replace(/\./g, '_')}`;

interface Case {
  readonly name: string;
  readonly classname: string;
  readonly ms: number;
  readonly status: 'passed' | 'failed' | 'error' | 'skipped';
  readonly xml: string;
}

function jobCase(r: JobResult): Case {
  const { job } = r;
  const name = `${job.task.name.slice(job.suite.name.length)}${job.variant ? `:${job.variant}` : ''}${job.task.samples > 1 ? `#${job.sample}` : ''}`;
  const classname = junitClassname(job.backend.name, job.system.name, job.suite.name);
  const status = jobStatus(r);
  const message = statusReason(r);
  const parts: string[] = [];
  if (status === 'failed') {
    const type = r.outcomes.find((o) => o === 'task-error' || o === 'task-prepare-error' || o === 'task-restore-error')!;
    parts.push(`<failure message="${attr(message)}" type="${type}">${cdata(r.failure?.output ?? '')}</failure>`);
  } else if (status === 'error') {
    const type = r.outcomes.find((o) => o.endsWith('-prepare-error') || o.endsWith('-restore-error')) ?? 'error';
    // The level script's output goes with the job it ran for; the others name it in their message.
    const body = r.levelFailure ? cdata(r.levelFailure.output) : '';
    parts.push(body ? `<error message="${attr(message)}" type="${type}">${body}</error>` : `<error message="${attr(message)}" type="${type}"/>`);
  } else if (status === 'skipped') {
    parts.push(`<skipped message="${attr(message)}"/>`);
  }
  const scripts = r.scripts.map((s) => `--- ${s.verb} ${job.name} (${s.machine}): ${s.ok ? 'ok' : s.reason ?? 'failed'} after ${seconds(s.durationMs)}s\n${s.output}${s.output.endsWith('\n') || s.output === '' ? '' : '\n'}`).join('');
  // Jenkins' attachments plugin links files named so in system-out.
  const out = r.log === undefined ? scripts : `${scripts}[[ATTACHMENT|${resolve(r.log)}]]\n`;
  if (out !== '') parts.push(`<system-out>${cdata(out)}</system-out>`);
  return { name, classname, ms: r.durationMs, status, xml: testcase(name, classname, r.durationMs, parts) };
}

const LEVEL_NAME: Record<string, string> = { suite: '[suite restore]', backend: '[backend restore]', project: '[project restore]' };

function levelCase(f: LevelFailure): Case {
  const { job } = f;
  const name = LEVEL_NAME[f.level] ?? `[${f.level} ${f.verb}]`;
  const classname = junitClassname(job.backend.name, job.system.name, job.suite.name);
  const parts = [`<error message="${attr(failureLine(f))}" type="${f.outcome}">${cdata(f.output)}</error>`];
  return { name, classname, ms: 0, status: 'error', xml: testcase(name, classname, 0, parts) };
}

const testcase = (name: string, classname: string, ms: number, parts: readonly string[]): string => {
  const head = `    <testcase name="${attr(name)}" classname="${attr(classname)}" time="${seconds(ms)}"`;
  return parts.length === 0 ? `${head}/>` : `${head}>\n${parts.map((p) => `      ${p}\n`).join('')}    </testcase>`;
};

const count = (cases: readonly Case[], s: Case['status']): number => cases.filter((c) => c.status === s).length;

export function renderJunit(record: RunRecord, o: JunitOptions): string {
  const suites = new Map<string, { cases: Case[]; startedAt: number }>();
  const add = (job: JobResult['job'], c: Case, at: number | undefined) => {
    const key = `${job.backend.name}:${job.system.name}:${job.suite.name}`;
    const s = suites.get(key) ?? { cases: [], startedAt: Infinity };
    s.cases.push(c);
    s.startedAt = Math.min(s.startedAt, at ?? Infinity);
    suites.set(key, s);
  };
  for (const r of record.jobs.values()) add(r.job, jobCase(r), r.startedAt);
  // Only restores: a failed prepare is already in the error of every job it kept from running.
  for (const f of record.levels) if (f.verb === 'restoring') add(f.job, levelCase(f), undefined);
  const all = [...suites.values()].flatMap((s) => s.cases);
  const body = [...suites.entries()].sort(([a], [b]) => byCodeUnit(a, b)).map(([name, s]) => {
    const time = s.cases.reduce((t, c) => t + c.ms, 0);
    const at = Number.isFinite(s.startedAt) ? s.startedAt : record.startedAt;
    return `  <testsuite name="${attr(name)}" tests="${s.cases.length}" failures="${count(s.cases, 'failed')}" errors="${count(s.cases, 'error')}" skipped="${count(s.cases, 'skipped')}" time="${seconds(time)}" timestamp="${junitTimestamp(at)}" hostname="${attr(o.hostname)}">\n${s.cases.map((c) => c.xml).join('\n')}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="spread" tests="${all.length}" failures="${count(all, 'failed')}" errors="${count(all, 'error')}" time="${seconds(record.endedAt - record.startedAt)}">\n${body.join('\n')}${body.length ? '\n' : ''}</testsuites>\n`;
}

export const junitReporter = (write: (xml: string) => void | Promise<void>, o: JunitOptions): Reporter => recordRun((record) => write(renderJunit(record, o)), Date.now, o.logs);
