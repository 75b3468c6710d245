/// <reference lib="dom" />
/**
 * Page script: reads the data the report carries and puts the page
 * together: the header (project, seed, times, totals, machines, the flake
 * hunt), the timeline, the failures, flaky and slowest jobs, the job table,
 * and the details of the job selected in any of them.
 */
import type { ReportData } from '../model.js';
import { STATUSES } from '../model.js';
import { decode } from './data.js';
import type { Decoded, PageJob } from './data.js';
import { mountFailures } from './failures.js';
import { fmtClock, fmtDelta, fmtDuration, h } from './format.js';
import { mountTable } from './table.js';
import { mountTimeline } from './timeline.js';

const TITLES: Readonly<Record<string, string>> = {
  'task-done': 'successful tasks', 'task-abort': 'aborted tasks', 'task-error': 'failed tasks',
  'task-prepare-error': 'failed task prepare', 'task-restore-error': 'failed task restore',
  'suite-prepare-error': 'failed suite prepare', 'suite-restore-error': 'failed suite restore',
  'backend-prepare-error': 'failed backend prepare', 'backend-restore-error': 'failed backend restore',
  'project-prepare-error': 'failed project prepare', 'project-restore-error': 'failed project restore',
};

/** The report's data: JSON, or gzipped JSON in base64 for large runs. */
async function readData(): Promise<ReportData> {
  const el = document.getElementById('spread-data')!;
  const text = el.textContent!;
  if (el.dataset['encoding'] !== 'gzip+base64') return JSON.parse(text) as ReportData;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return JSON.parse(await new Response(inflated).text()) as ReportData;
}

export async function start(): Promise<void> {
  let data: ReportData;
  try {
    data = await readData();
  } catch (err) {
    document.getElementById('header')!.append(h('p', { class: 'interrupted' }, `This browser cannot read the report's data: ${(err as Error).message}`));
    throw err;
  }
  const d = decode(data);
  const byId = (id: string) => document.getElementById(id)!;
  header(byId('header'), d);
  const detail = byId('job-detail');
  const select = (job: number): void => {
    timeline.select(job);
    table.reveal(job);
    showJob(detail, d, job, (failure) => failures.open(failure));
    detail.scrollIntoView({ block: 'nearest' });
  };
  const timeline = mountTimeline(byId('timeline'), d, select);
  const failures = mountFailures(byId('failures'), d, select);
  flaky(byId('flaky'), d, select);
  slowest(byId('slowest'), d, select);
  const table = mountTable(byId('jobs'), d, select);
  (window as unknown as { spreadReport: unknown }).spreadReport = { data, timeline, table, failures, select };
  // For measurements: the page is built, and (two frames later) painted.
  performance.mark('spread-report-drawn');
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark('spread-report-painted')));
}

function header(root: HTMLElement, d: Decoded): void {
  const { data } = d;
  const count = (status: string) => d.jobs.filter((j) => j.status === status).length;
  const systems = new Map<string, number>();
  for (const lane of data.lanes) systems.set(lane.system, (systems.get(lane.system) ?? 0) + 1);
  const categories = data.summary.filter(([outcome, n]) => n > 0 && outcome !== 'task-done' && outcome !== 'task-abort');
  root.append(
    h('h1', {}, `spread: ${data.project}`),
    h('div', { class: 'meta' },
      `${fmtClock(data.startedAt)} to ${fmtClock(data.endedAt)} (${fmtDuration(data.endedAt - data.startedAt)})`,
      ` · seed ${data.seed}`, data.interrupted ? h('b', { class: 'interrupted' }, ' · interrupted') : null),
    h('div', { class: 'totals' },
      h('span', { class: 'badge big', 'data-total': 'jobs' }, `${d.jobs.length} job${d.jobs.length === 1 ? '' : 's'}`),
      ...STATUSES.map((s) => h('span', { class: `badge big ${s}`, 'data-total': s }, `${count(s)} ${s}`)),
      ...categories.map(([outcome, n]) => h('span', { class: 'badge big failed', 'data-summary': outcome }, `${n} ${TITLES[outcome] ?? outcome}`))),
    h('div', { class: 'meta machines' }, `${data.lanes.length} machine${data.lanes.length === 1 ? '' : 's'}: `,
      [...systems].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([system, n]) => `${system} × ${n}`).join(', ') || 'none'),
  );
  const hunt = data.hunt;
  if (!hunt) return;
  const rate = hunt.runs ? ` ${hunt.failures} of ${hunt.runs} runs failed (${((100 * hunt.failures) / hunt.runs).toFixed(1)}%).` : '';
  const matched = hunt.matchedJob >= 0 ? d.jobs[hunt.matchedJob]! : undefined;
  root.append(h('div', { class: `hunt ${matched ? 'matched' : ''}` },
    matched
      ? `Flake hunt matched after ${hunt.runs} runs on ${hunt.machines} machines in ${fmtDuration(hunt.durationMs)}: ${matched.name} on ${hunt.machine}.${rate}`
      : `Flake hunt not matched after ${hunt.runs} runs on ${hunt.machines} machines in ${fmtDuration(hunt.durationMs)}.${rate}`,
    matched && hunt.kept ? h('div', {}, 'Open a shell there with: ', h('code', {}, `spread -reuse -shell ${matched.name}`)) : null,
    hunt.workdir ? h('div', {}, h('a', { href: hunt.workdir }, 'working directory (.tar.gz)')) : null));
}

function jobLink(j: PageJob, select: (job: number) => void): HTMLElement {
  const a = h('a', { href: '#', class: 'job-link' }, j.name);
  a.addEventListener('click', (e) => {
    e.preventDefault();
    select(j.i);
  });
  return a;
}

/** Jobs that both passed and failed in their recent runs, most failures first. */
function flaky(root: HTMLElement, d: Decoded, select: (job: number) => void): void {
  const list = d.jobs.filter((j) => j.recent.includes('P') && j.recent.includes('F'))
    .sort((a, b) => b.recent.split('F').length - a.recent.split('F').length || (a.name < b.name ? -1 : 1));
  if (list.length === 0) return void root.append(h('p', { class: 'none' }, d.jobs.some((j) => j.recent) ? 'No job both passed and failed in its recent runs.' : 'No history: run with history on (the default) to see flaky jobs.'));
  root.append(h('table', { class: 'small' }, h('tr', {}, h('th', {}, 'job'), h('th', {}, 'recent runs, oldest first'), h('th', {}, 'failed')),
    ...list.slice(0, 50).map((j) => h('tr', { 'data-job': j.name }, h('td', {}, jobLink(j, select)),
      h('td', { class: 'strip' }, ...[...j.recent].map((c) => h('i', { class: c === 'P' ? 'passed' : 'failed', title: c === 'P' ? 'passed' : 'failed' }))),
      h('td', {}, `${j.recent.split('F').length - 1} of ${j.recent.length}`)))));
}

function slowest(root: HTMLElement, d: Decoded, select: (job: number) => void): void {
  const list = d.jobs.filter((j) => j.runs > 0).sort((a, b) => b.ms - a.ms).slice(0, 15);
  const max = list[0]?.ms ?? 1;
  if (list.length === 0) return void root.append(h('p', { class: 'none' }, 'No job ran.'));
  root.append(h('table', { class: 'small' }, h('tr', {}, h('th', {}, 'job'), h('th', {}, 'duration'), h('th', {}, 'vs previous')),
    ...list.map((j) => h('tr', { 'data-job': j.name }, h('td', {}, jobLink(j, select)),
      h('td', { class: 'bar-cell' }, h('i', { class: `bar ${j.status}`, style: `width:${Math.max(2, Math.round((j.ms / max) * 120))}px` }), fmtDuration(j.ms)),
      h('td', {}, fmtDelta(j.ms, j.previousMs))))));
}

function showJob(root: HTMLElement, d: Decoded, job: number, openFailure: (i: number) => void): void {
  const j = d.jobs[job]!;
  const runs = d.runsByJob.get(job) ?? [];
  const failure = j.failure >= 0 ? d.data.failures[j.failure] : undefined;
  const artifacts = j.artifacts >= 0 ? d.data.artifacts[j.artifacts] : undefined;
  const open = h('a', { href: `#failure-${j.failure}` }, 'its failure');
  open.addEventListener('click', (e) => {
    e.preventDefault();
    openFailure(j.failure);
  });
  root.replaceChildren(h('div', { class: 'detail' },
    h('span', { class: `badge ${j.status}` }, j.status), ' ', h('b', {}, j.name),
    h('div', {}, `${runs.length} run${runs.length === 1 ? '' : 's'}${j.machine ? `, last on ${j.machine}` : ''}; ${fmtDuration(j.ms)}`,
      j.previousMs > 0 ? ` (previous ${fmtDuration(j.previousMs)}, ${fmtDelta(j.ms, j.previousMs)})` : ''),
    failure ? h('div', {}, `Failed ${failure.level === 'task' ? '' : `${failure.level} `}${failure.verb}: `, open) : null,
    artifacts ? h('div', {}, h('a', { href: artifacts.path }, 'artifacts')) : null));
}

void start();
