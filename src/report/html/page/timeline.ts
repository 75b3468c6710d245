/// <reference lib="dom" />
/**
 * Page script: the timeline. One lane per machine, drawn on a canvas so a
 * run of tens of thousands of jobs stays smooth: each run of a job is a
 * bar in three parts (prepare, execute, restore), coloured by outcome;
 * project, backend and suite scripts are a thin band at the top of the
 * lane; the lane's background shows when the machine was there, so gaps
 * are idle time. Hover for details, click to select a job, drag to zoom,
 * double-click to see everything again.
 */
import type { Decoded } from './data.js';
import { fmtClock, fmtDuration, h, STATUS_COLOURS } from './format.js';
import { L, L_SIZE, LEVELS, R, R_SIZE, RUN_EXECUTE_FAILED, RUN_MATCHED, RUN_PREPARE_FAILED, RUN_RESTORE_FAILED } from '../model.js';

const LANE_H = 24;
const AXIS_H = 22;
const BAND_H = 5;
const FAILED = RUN_PREPARE_FAILED | RUN_EXECUTE_FAILED | RUN_RESTORE_FAILED;
const LEVEL_COLOURS = ['#3f6fb0', '#3f6fb0', '#8a63c2'];

/** A bar as drawn, in viewport coordinates (for tests and tools). */
export interface BarBox {
  readonly job: string;
  readonly lane: string;
  readonly status: 'passed' | 'failed';
  readonly matched: boolean;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  /** Widths of the three parts, in pixels. */
  readonly prepare: number;
  readonly execute: number;
  readonly restore: number;
}

export interface TimelineApi {
  bars(): BarBox[];
  lanes(): { name: string; system: string; idle: number }[];
  select(job: number): void;
  reset(): void;
}

export function mountTimeline(root: HTMLElement, d: Decoded, onSelect: (job: number) => void): TimelineApi {
  const { data } = d;
  const runs = data.runs;
  let v0 = 0;
  let v1 = d.span;
  let selected = -1;
  const idle = data.lanes.map((lane, i) => idleShare(d, i, lane.from, lane.to));

  const canvas = h('canvas', { class: 'tl-canvas' });
  const wrap = h('div', { class: 'tl-wrap' }, canvas);
  const labels = h('div', { class: 'tl-labels' }, h('div', { class: 'tl-axis-spacer' }, 'machine'),
    ...data.lanes.map((lane, i) => h('div', { class: 'tl-lane', title: `${lane.system} (${lane.name})` },
      h('span', { class: 'tl-name' }, lane.name), h('span', { class: 'tl-idle' }, `idle ${Math.round(idle[i]! * 100)}%`))));
  const tip = h('div', { class: 'tl-tip', hidden: true });
  const band = h('div', { class: 'tl-drag', hidden: true });
  const controls = h('div', { class: 'tl-controls' },
    button('Zoom in', () => zoomAround((v0 + v1) / 2, 0.5)), button('Zoom out', () => zoomAround((v0 + v1) / 2, 2)), button('Fit', () => reset()),
    h('span', { class: 'legend' }, swatch(STATUS_COLOURS['passed']!, 'passed'), swatch(STATUS_COLOURS['failed']!, 'failed'),
      swatch(LEVEL_COLOURS[0]!, 'project/backend'), swatch(LEVEL_COLOURS[2]!, 'suite'), ' bars: prepare | execute | restore; drag to zoom'));
  root.append(controls, h('div', { class: 'tl-body' }, labels, wrap), tip, band);

  // The canvas width, read once per drawing: reading it forces a layout, far too slow per bar.
  let width = 100;
  const X = (t: number) => ((t - v0) / (v1 - v0)) * width;
  const T = (x: number) => v0 + (x / width) * (v1 - v0);
  const laneTop = (i: number) => AXIS_H + i * LANE_H;

  function draw(): void {
    width = Math.max(wrap.clientWidth, 100);
    const w = width;
    const height = AXIS_H + data.lanes.length * LANE_H;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, height);
    drawAxis(ctx, w, height);
    data.lanes.forEach((lane, i) => {
      ctx.fillStyle = i % 2 ? '#f4f5f7' : '#fafbfc';
      ctx.fillRect(0, laneTop(i), w, LANE_H);
      ctx.fillStyle = '#e3e9f2';
      ctx.fillRect(X(lane.from), laneTop(i) + 1, Math.max(1, X(lane.to) - X(lane.from)), LANE_H - 2);
    });
    for (let at = 0; at < data.levels.length; at += L_SIZE) {
      const x0 = X(data.levels[at + L.Start]!);
      const x1 = X(data.levels[at + L.End]!);
      if (x1 < 0 || x0 > w) continue;
      ctx.fillStyle = data.levels[at + L.Ok] ? LEVEL_COLOURS[data.levels[at + L.Level]!]! : STATUS_COLOURS['failed']!;
      ctx.fillRect(x0, laneTop(data.levels[at + L.Lane]!) + 1, Math.max(1, x1 - x0), BAND_H);
    }
    for (let at = 0; at < runs.length; at += R_SIZE) drawRun(ctx, at, w);
  }

  function drawAxis(ctx: CanvasRenderingContext2D, w: number, height: number): void {
    const step = niceStep((v1 - v0) / Math.max(1, w / 110));
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (let t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.fillStyle = '#d5d9e0';
      ctx.fillRect(x, AXIS_H - 4, 1, height);
      ctx.fillStyle = '#555';
      ctx.fillText(fmtDuration(t), x + 3, AXIS_H / 2);
    }
  }

  function drawRun(ctx: CanvasRenderingContext2D, at: number, w: number): void {
    const t = [runs[at + R.T0]!, runs[at + R.T1]!, runs[at + R.T2]!, runs[at + R.T3]!] as const;
    const x0 = X(t[0]);
    const x3 = Math.max(X(t[3]), x0 + 1);
    if (x3 < 0 || x0 > w) return;
    const flags = runs[at + R.Flags]!;
    const colour = STATUS_COLOURS[flags & FAILED ? 'failed' : 'passed']!;
    const y = laneTop(runs[at + R.Lane]!) + BAND_H + 3;
    const hgt = LANE_H - BAND_H - 6;
    const parts: [number, number, number, number][] = [[t[0], t[1], 0.45, RUN_PREPARE_FAILED], [t[1], t[2], 1, RUN_EXECUTE_FAILED], [t[2], t[3], 0.7, RUN_RESTORE_FAILED]];
    ctx.fillStyle = colour;
    // A pixel of gap after each run keeps back-to-back runs apart.
    const right = x3 - x0 > 3 ? x3 - 1 : x3;
    for (const [a, b, alpha, bit] of parts) {
      if (b <= a) continue;
      ctx.globalAlpha = flags & bit ? 1 : alpha;
      ctx.fillRect(X(a), y, Math.max(Math.min(X(b), right) - X(a), 0.5), hgt);
    }
    ctx.globalAlpha = 1;
    if (X(t[3]) - x0 < 1) ctx.fillRect(x0, y, 1, hgt);
    if (flags & RUN_MATCHED || runs[at + R.Job] === selected) {
      ctx.strokeStyle = '#111';
      ctx.lineWidth = flags & RUN_MATCHED ? 2 : 1.5;
      ctx.strokeRect(x0 - 1, y - 1, x3 - x0 + 2, hgt + 2);
    }
  }

  /** The run (offset into runs) or level script under a point of the canvas. */
  function hit(x: number, y: number): { run?: number; level?: number } | undefined {
    const lane = Math.floor((y - AXIS_H) / LANE_H);
    if (lane < 0 || lane >= data.lanes.length) return undefined;
    const t = T(x);
    const slack = (v1 - v0) * (2 / width);
    if (y - laneTop(lane) <= BAND_H + 2) {
      for (let at = 0; at < data.levels.length; at += L_SIZE) {
        if (data.levels[at + L.Lane] === lane && data.levels[at + L.Start]! - slack <= t && t <= data.levels[at + L.End]! + slack) return { level: at };
      }
      return undefined;
    }
    const list = d.runsByLane[lane]!;
    let lo = 0;
    let hi = list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (runs[list[mid]! + R.T0]! - slack <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const at = found >= 0 ? list[found]! : -1;
    return at >= 0 && t <= runs[at + R.T3]! + slack ? { run: at } : undefined;
  }

  function describe(target: { run?: number; level?: number }): HTMLElement {
    if (target.level !== undefined) {
      const at = target.level;
      const job = d.jobs[data.levels[at + L.Job]!]!;
      const level = LEVELS[data.levels[at + L.Level]!]!;
      const what = level === 'suite' ? `${job.backend}:${job.system}:${job.suite}` : `${job.backend}:${job.system}`;
      return h('div', {}, h('b', {}, `${level} ${data.levels[at + L.Verb] ? 'restore' : 'prepare'}`), ` ${what}`,
        h('div', {}, `${data.levels[at + L.Ok] ? 'ok' : 'failed'}, ${fmtDuration(data.levels[at + L.End]! - data.levels[at + L.Start]!)}`));
    }
    const at = target.run!;
    const job = d.jobs[runs[at + R.Job]!]!;
    const t = (k: number) => runs[at + k]!;
    const flags = t(R.Flags);
    const failed = flags & RUN_PREPARE_FAILED ? 'prepare failed' : flags & RUN_EXECUTE_FAILED ? 'execute failed' : flags & RUN_RESTORE_FAILED ? 'restore failed' : 'passed';
    return h('div', {}, h('b', {}, job.name), h('div', {}, `${failed}${flags & RUN_MATCHED ? ' (the failure the hunt matched)' : ''} on ${data.lanes[t(R.Lane)]!.name}`),
      h('div', {}, `started ${fmtClock(data.startedAt + t(R.T0))}, took ${fmtDuration(t(R.T3) - t(R.T0))}`),
      h('div', { class: 'tl-parts' }, `prepare ${fmtDuration(t(R.T1) - t(R.T0))} · execute ${fmtDuration(t(R.T2) - t(R.T1))} · restore ${fmtDuration(t(R.T3) - t(R.T2))}`));
  }

  let dragFrom: number | undefined;
  canvas.addEventListener('mousemove', (e) => {
    const box = canvas.getBoundingClientRect();
    const x = e.clientX - box.left;
    if (dragFrom !== undefined && Math.abs(x - dragFrom) > 4) {
      band.hidden = false;
      const rootBox = root.getBoundingClientRect();
      Object.assign(band.style, { left: `${Math.min(x, dragFrom) + box.left - rootBox.left}px`, width: `${Math.abs(x - dragFrom)}px`, top: `${box.top - rootBox.top}px`, height: `${box.height}px` });
    }
    const target = hit(x, e.clientY - box.top);
    if (!target) return void (tip.hidden = true);
    tip.replaceChildren(describe(target));
    tip.hidden = false;
    const rootBox = root.getBoundingClientRect();
    tip.style.left = `${Math.min(e.clientX - rootBox.left + 14, rootBox.width - 330)}px`;
    tip.style.top = `${e.clientY - rootBox.top + 16}px`;
    canvas.style.cursor = target.run !== undefined ? 'pointer' : 'default';
  });
  canvas.addEventListener('mouseleave', () => void (tip.hidden = true));
  canvas.addEventListener('mousedown', (e) => void (dragFrom = e.clientX - canvas.getBoundingClientRect().left));
  canvas.addEventListener('mouseup', (e) => {
    const box = canvas.getBoundingClientRect();
    const x = e.clientX - box.left;
    const from = dragFrom;
    dragFrom = undefined;
    band.hidden = true;
    if (from !== undefined && Math.abs(x - from) > 4) return zoomTo(T(Math.min(x, from)), T(Math.max(x, from)));
    const target = hit(x, e.clientY - box.top);
    if (target?.run !== undefined) onSelect(runs[target.run + R.Job]!);
    else if (target?.level !== undefined) onSelect(data.levels[target.level + L.Job]!);
  });
  canvas.addEventListener('dblclick', () => reset());
  canvas.addEventListener('wheel', (e) => {
    if (!e.ctrlKey) return;
    e.preventDefault();
    zoomAround(T(e.clientX - canvas.getBoundingClientRect().left), e.deltaY > 0 ? 1.25 : 0.8);
  }, { passive: false });

  function zoomTo(a: number, b: number): void {
    v0 = Math.max(0, a);
    v1 = Math.min(d.span, Math.max(b, v0 + 10));
    draw();
  }
  function zoomAround(t: number, factor: number): void {
    zoomTo(t - (t - v0) * factor, t + (v1 - t) * factor);
  }
  function reset(): void {
    v0 = 0;
    v1 = d.span;
    draw();
  }

  new ResizeObserver(() => {
    if (Math.max(wrap.clientWidth, 100) !== width) draw();
  }).observe(wrap);
  draw();

  return {
    bars: () => {
      const box = canvas.getBoundingClientRect();
      const list: BarBox[] = [];
      for (let at = 0; at < runs.length; at += R_SIZE) {
        const t = (k: number) => runs[at + k]!;
        const flags = t(R.Flags);
        const x0 = X(t(R.T0));
        list.push({
          job: d.jobs[t(R.Job)]!.name, lane: data.lanes[t(R.Lane)]!.name, status: flags & FAILED ? 'failed' : 'passed', matched: (flags & RUN_MATCHED) !== 0,
          x: box.left + x0, y: box.top + laneTop(t(R.Lane)) + BAND_H + 3, width: Math.max(X(t(R.T3)) - x0, 1), height: LANE_H - BAND_H - 6,
          prepare: X(t(R.T1)) - x0, execute: X(t(R.T2)) - X(t(R.T1)), restore: X(t(R.T3)) - X(t(R.T2)),
        });
      }
      return list;
    },
    lanes: () => data.lanes.map((lane, i) => ({ name: lane.name, system: lane.system, idle: idle[i]! })),
    select: (job) => {
      selected = job;
      draw();
    },
    reset,
  };
}

function button(label: string, onClick: () => void): HTMLButtonElement {
  const b = h('button', { type: 'button' }, label);
  b.addEventListener('click', onClick);
  return b;
}

const swatch = (colour: string, label: string): HTMLElement =>
  h('span', { class: 'swatch' }, h('i', { style: `background:${colour}` }), label);

/** A tick step of 1, 2 or 5 times a power of ten, in ms, near `ms`. */
function niceStep(ms: number): number {
  const units = [1000, 60_000, 3_600_000];
  for (const u of [...units].reverse()) if (ms >= u) return niceIn(ms / u) * u;
  return niceIn(ms);
}
function niceIn(n: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(n, 1e-9)));
  const m = n / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** The share of a lane's time with nothing running on it. */
function idleShare(d: Decoded, lane: number, from: number, to: number): number {
  if (to <= from) return 0;
  const spans: [number, number][] = [];
  for (const at of d.runsByLane[lane]!) spans.push([d.data.runs[at + R.T0]!, d.data.runs[at + R.T3]!]);
  for (let at = 0; at < d.data.levels.length; at += L_SIZE) {
    if (d.data.levels[at + L.Lane] === lane) spans.push([d.data.levels[at + L.Start]!, d.data.levels[at + L.End]!]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let busy = 0;
  let end = from;
  for (const [a, b] of spans) {
    const s = Math.max(a, end);
    if (b > s) busy += b - s;
    end = Math.max(end, b);
  }
  return Math.max(0, 1 - busy / (to - from));
}
