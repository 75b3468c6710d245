/// <reference lib="dom" />
/**
 * Page script: the job table, sortable by any column and filterable by
 * status, backend, system, suite and text. Only the rows in view exist in
 * the document (virtual scrolling), so sixty thousand jobs cost no more to
 * show than sixty.
 */
import { STATUSES } from '../model.js';
import type { Decoded, PageJob } from './data.js';
import { fmtDelta, fmtDuration, h } from './format.js';

const ROW_H = 24;
const OVERSCAN = 10;
const MAX_BODY_H = 480;

interface Column {
  readonly title: string;
  readonly key: (j: PageJob) => string | number;
  readonly cell: (j: PageJob) => Node | string;
}

export interface TableFilter {
  status?: string;
  backend?: string;
  system?: string;
  suite?: string;
  text?: string;
}

export interface TableApi {
  /** Jobs shown after filtering, and all of them. */
  count(): { shown: number; total: number };
  setFilter(f: TableFilter): void;
  sortBy(column: string, descending?: boolean): void;
  /** Names of the jobs in the rows that exist in the document, top to bottom. */
  renderedNames(): string[];
  /** Show this job: clear filters that hide it and scroll it into view. */
  reveal(job: number): void;
}

export function mountTable(root: HTMLElement, d: Decoded, onSelect: (job: number) => void): TableApi {
  const columns: Column[] = [
    { title: 'status', key: (j) => j.status, cell: (j) => h('span', { class: `badge ${j.status}` }, j.status) },
    { title: 'job', key: (j) => j.name, cell: (j) => link(j) },
    { title: 'machine', key: (j) => j.machine, cell: (j) => j.machine },
    { title: 'duration', key: (j) => j.ms, cell: (j) => fmtDuration(j.ms) },
    { title: 'vs previous', key: (j) => (j.previousMs > 0 && j.ms > 0 ? (j.ms - j.previousMs) / j.previousMs : -Infinity), cell: (j) => delta(j) },
    { title: 'runs', key: (j) => j.runs, cell: (j) => (j.failedRuns ? `${j.runs} (${j.failedRuns} failed)` : String(j.runs)) },
  ];
  const link = (j: PageJob): HTMLElement => {
    const a = h('a', { href: '#', class: 'job-link', title: j.name }, j.name);
    a.addEventListener('click', (e) => {
      e.preventDefault();
      onSelect(j.i);
    });
    return a;
  };
  const delta = (j: PageJob): HTMLElement => {
    const text = fmtDelta(j.ms, j.previousMs);
    const pct = j.previousMs > 0 ? (j.ms - j.previousMs) / j.previousMs : 0;
    return h('span', { class: pct > 0.25 ? 'slower' : pct < -0.25 ? 'faster' : '', title: j.previousMs > 0 ? `previous: ${fmtDuration(j.previousMs)}` : 'no previous time' }, text);
  };

  const filter: TableFilter = {};
  let order: number[] = d.jobs.map((j) => j.i);
  let shown: number[] = order;
  let sort = { column: 'job', descending: false };

  const select = (name: keyof TableFilter, title: string, values: string[]): HTMLSelectElement => {
    const el = h('select', { 'data-filter': name, 'aria-label': title }, h('option', { value: '' }, `${title}: all`), ...values.map((v) => h('option', { value: v }, v)));
    el.addEventListener('change', () => update({ [name]: el.value || undefined }));
    return el;
  };
  const unique = (f: (j: PageJob) => string) => [...new Set(d.jobs.map(f))].sort();
  const text = h('input', { type: 'search', placeholder: 'filter jobs by name', 'data-filter': 'text' });
  text.addEventListener('input', () => update({ text: text.value || undefined }));
  const counter = h('span', { class: 'count' });
  const filters = h('div', { class: 'filters' },
    select('status', 'status', [...STATUSES, 'flaky']), select('backend', 'backend', unique((j) => j.backend)),
    select('system', 'system', unique((j) => j.system)), select('suite', 'suite', unique((j) => j.suite)), text, counter);
  const head = h('div', { class: 'vt-head vt-grid' }, ...columns.map((c) => {
    const cell = h('button', { type: 'button', class: 'vt-sort', 'data-column': c.title }, c.title);
    cell.addEventListener('click', () => sortBy(c.title, sort.column === c.title ? !sort.descending : c.title === 'duration' || c.title === 'vs previous'));
    return cell;
  }));
  const rows = h('div', { class: 'vt-rows' });
  const spacer = h('div', { class: 'vt-spacer' }, rows);
  const body = h('div', { class: 'vt-body' }, spacer);
  root.append(filters, h('div', { class: 'vt' }, head, body));

  function update(change: TableFilter): void {
    Object.assign(filter, change);
    for (const el of filters.querySelectorAll<HTMLSelectElement | HTMLInputElement>('[data-filter]')) {
      el.value = filter[el.dataset['filter'] as keyof TableFilter] ?? '';
    }
    const q = filter.text?.toLowerCase();
    shown = order.filter((i) => {
      const j = d.jobs[i]!;
      if (filter.status === 'flaky' ? !(j.recent.includes('P') && j.recent.includes('F')) : filter.status && j.status !== filter.status) return false;
      return (!filter.backend || j.backend === filter.backend) && (!filter.system || j.system === filter.system)
        && (!filter.suite || j.suite === filter.suite) && (!q || j.name.toLowerCase().includes(q));
    });
    counter.textContent = `${shown.length} of ${d.jobs.length} jobs`;
    spacer.style.height = `${shown.length * ROW_H}px`;
    body.style.height = `${Math.min(MAX_BODY_H, Math.max(ROW_H, shown.length * ROW_H) + 2)}px`;
    body.scrollTop = Math.min(body.scrollTop, Math.max(0, shown.length * ROW_H - body.clientHeight));
    paint();
  }

  function sortBy(column: string, descending = false): void {
    const c = columns.find((x) => x.title === column) ?? columns[1]!;
    sort = { column: c.title, descending };
    const keys = d.jobs.map(c.key);
    const name = d.jobs.map((j) => j.name);
    order = d.jobs.map((j) => j.i).sort((a, b) => {
      const ka = keys[a]!;
      const kb = keys[b]!;
      const by = ka < kb ? -1 : ka > kb ? 1 : name[a]! < name[b]! ? -1 : name[a]! > name[b]! ? 1 : 0;
      return descending ? -by : by;
    });
    for (const el of head.querySelectorAll<HTMLElement>('.vt-sort')) {
      el.dataset['sorted'] = el.dataset['column'] === c.title ? (descending ? 'desc' : 'asc') : '';
    }
    update({});
  }

  function paint(): void {
    const first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(shown.length, Math.ceil((body.scrollTop + (body.clientHeight || MAX_BODY_H)) / ROW_H) + OVERSCAN);
    rows.style.transform = `translateY(${first * ROW_H}px)`;
    const list: HTMLElement[] = [];
    for (let k = first; k < last; k++) {
      const j = d.jobs[shown[k]!]!;
      list.push(h('div', { class: `vt-row vt-grid ${j.status}`, 'data-job': j.name }, ...columns.map((c) => h('div', { class: 'vt-cell' }, c.cell(j)))));
    }
    rows.replaceChildren(...list);
  }

  let pending = false;
  body.addEventListener('scroll', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      paint();
    });
  });
  sortBy('job');

  return {
    count: () => ({ shown: shown.length, total: d.jobs.length }),
    setFilter: (f) => update({ status: undefined, backend: undefined, system: undefined, suite: undefined, text: undefined, ...f }),
    sortBy,
    renderedNames: () => [...rows.querySelectorAll<HTMLElement>('.vt-row')].map((r) => r.dataset['job']!),
    reveal: (job) => {
      if (!shown.includes(job)) update({ status: undefined, backend: undefined, system: undefined, suite: undefined, text: undefined });
      body.scrollTop = Math.max(0, shown.indexOf(job) * ROW_H - ROW_H * 2);
      paint();
    },
  };
}
