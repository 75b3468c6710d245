/// <reference lib="dom" />
/**
 * Page script: the failures, each collapsed to one line (the job, what
 * failed, the last line of its error) and opened on demand to its output,
 * its debug output and links to its artifacts. A search box keeps the
 * failures whose text matches, opened, matches highlighted. Added a page at
 * a time, and their output put in the document only when opened.
 */
import type { FailureData } from '../model.js';
import type { Decoded } from './data.js';
import { appendMarked, h } from './format.js';

const PAGE = 50;

export interface FailuresApi {
  /** Failures listed now, and how many match the search. */
  count(): { listed: number; matching: number };
  search(query: string): void;
  /** Open a failure and scroll to it. */
  open(failure: number): void;
}

/** The line that says most: the last one of the error that is not a frame or a trace of `exit`. */
export function headline(f: FailureData): string {
  const lines = (f.error || f.output).split('\n').map((l) => l.trim()).filter((l) => l !== '' && l !== '-----');
  return lines.filter((l) => !/^\+* ?exit \d+$/.test(l)).pop() ?? lines.pop() ?? '';
}

export function mountFailures(root: HTMLElement, d: Decoded, onSelect: (job: number) => void): FailuresApi {
  const all = d.data.failures.map((_, i) => i);
  // A hunt's matching failure first.
  all.sort((a, b) => Number(d.data.failures[b]!.matched ?? false) - Number(d.data.failures[a]!.matched ?? false) || a - b);
  let query = '';
  let matching = all;
  let listed = 0;

  const input = h('input', { type: 'search', placeholder: 'search failures and their output', class: 'failure-search' });
  const counter = h('span', { class: 'count' });
  const list = h('div', { class: 'failure-list' });
  const more = h('button', { type: 'button', class: 'more' });
  root.append(h('div', { class: 'filters' }, input, counter), list, more);
  if (all.length === 0) root.append(h('p', { class: 'none' }, 'No failures.'));

  let timer = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => search(input.value), 150);
  });
  more.addEventListener('click', () => addPage());

  function search(q: string): void {
    query = q.trim();
    input.value = q;
    const lower = query.toLowerCase();
    matching = !lower ? all : all.filter((i) => {
      const f = d.data.failures[i]!;
      return [d.jobs[f.job]!.name, f.context, f.error, f.output, f.debug ?? ''].some((t) => t.toLowerCase().includes(lower));
    });
    list.replaceChildren();
    listed = 0;
    addPage();
  }

  function addPage(): void {
    const end = Math.min(matching.length, listed + PAGE);
    for (; listed < end; listed++) list.append(item(matching[listed]!));
    counter.textContent = query ? `${matching.length} of ${all.length} failures match` : `${all.length} failures`;
    more.hidden = listed >= matching.length;
    more.textContent = `show ${Math.min(PAGE, matching.length - listed)} more of ${matching.length - listed}`;
  }

  function item(i: number): HTMLElement {
    const f = d.data.failures[i]!;
    const job = d.jobs[f.job]!;
    const machine = d.data.lanes[f.lane]?.name ?? '';
    const what = f.level === 'task' ? f.verb : `${f.level} ${f.verb}`;
    const summary = h('summary', {},
      h('span', { class: 'badge failed' }, what), f.matched ? h('span', { class: 'badge matched' }, 'matching failure') : null,
      f.saved ? h('span', { class: 'badge unmatched' }, 'unmatched') : null,
      ' ', h('b', {}, f.level === 'task' ? job.name : f.context), h('span', { class: 'machine' }, ` on ${machine}`), h('span', { class: 'headline' }, ` ${headline(f)}`));
    const details = h('details', { class: 'failure', id: `failure-${i}`, 'data-failure': i }, summary);
    const fill = () => {
      if (details.dataset['filled']) return;
      details.dataset['filled'] = '1';
      const links = h('div', { class: 'links' });
      const show = h('a', { href: '#' }, 'show in timeline and table');
      show.addEventListener('click', (e) => {
        e.preventDefault();
        onSelect(f.job);
      });
      links.append(show);
      const artifacts = job.artifacts >= 0 ? d.data.artifacts[job.artifacts] : undefined;
      if (artifacts) links.append(' · ', h('a', { href: artifacts.path }, artifacts.error ? 'artifacts (incomplete)' : 'artifacts'));
      if (f.saved) links.append(' · ', h('a', { href: f.saved }, 'saved output'));
      const out = h('pre', { class: 'output' });
      appendMarked(out, f.output || f.error, query);
      details.append(links, h('div', { class: 'label' }, `Error ${f.verb} ${f.context} (${machine}) : ${f.error.includes('\n') ? '' : f.error}`), out);
      if (f.debug) {
        const debug = h('pre', { class: 'output debug' });
        appendMarked(debug, f.debug, query);
        details.append(h('div', { class: 'label' }, 'debug output'), debug);
      }
    };
    details.addEventListener('toggle', () => {
      if (details.open) fill();
    });
    if (query) {
      fill();
      details.open = true;
    }
    return details;
  }

  search('');
  return {
    count: () => ({ listed, matching: matching.length }),
    search,
    open: (failure) => {
      if (!matching.includes(failure)) search('');
      while (listed <= matching.indexOf(failure) && listed < matching.length) addPage();
      const el = list.querySelector<HTMLDetailsElement>(`#failure-${failure}`);
      if (!el) return;
      el.open = true;
      el.scrollIntoView({ block: 'start' });
    },
  };
}
