/// <reference lib="dom" />
/**
 * Page script (runs in the browser, inlined into the report): small DOM and
 * formatting helpers shared by the page's parts.
 */

type Child = Node | string | null | undefined | false;

/** An element with attributes (`class`, `title`, `data-*`...) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** `850ms`, `12.3s`, `4m05s`, `1h02m`. */
export function fmtDuration(ms: number): string {
  if (ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** Local wall-clock time of an epoch-ms instant: `2024-05-01 13:04:05`. */
export function fmtClock(epochMs: number): string {
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The change from a previous duration: `+12%`, `-40%`; '' without one. */
export function fmtDelta(ms: number, previousMs: number): string {
  if (previousMs <= 0 || ms <= 0) return '';
  const pct = Math.round(((ms - previousMs) / previousMs) * 100);
  return `${pct > 0 ? '+' : ''}${pct}%`;
}

/** Appends `text` to `parent`, each case-insensitive match of `query` in a <mark>; returns the matches. */
export function appendMarked(parent: HTMLElement, text: string, query: string, limit = 500): number {
  if (!query) {
    parent.append(text);
    return 0;
  }
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  let from = 0;
  let found = 0;
  for (let at = lower.indexOf(q); at >= 0 && found < limit; at = lower.indexOf(q, at + q.length)) {
    parent.append(text.slice(from, at), h('mark', {}, text.slice(at, at + q.length)));
    from = at + q.length;
    found++;
  }
  parent.append(text.slice(from));
  return found;
}

/** Colours by status, shared by the timeline (canvas) and the CSS classes. */
export const STATUS_COLOURS: Readonly<Record<string, string>> = { passed: '#2f9e50', failed: '#d1383d', error: '#b45309', skipped: '#9a9a9a' };
