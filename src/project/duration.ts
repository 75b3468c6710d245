/**
 * The value types of spread.yaml: Timeout (Go duration strings) and Size.
 * Written by hand because they must accept exactly what Go's
 * time.ParseDuration and spread's Size accept, and no library does.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};

/** Parse a Go duration (`30s`, `1m30s`, `1.5h`, `0`) into milliseconds; undefined if invalid. */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  while (s.length > 0) {
    const m = part.exec(s);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
    const unit = UNIT_MS[m[3]!];
    if (unit === undefined) return undefined;
    total += Number(`${m[1] || '0'}.${m[2] ?? ''}0`) * unit;
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/**
 * A timeout field: 0 when unset, `Infinity` for "no timeout". `-1` is what the
 * original's README promises but its parser rejects; we accept it (spec §12),
 * and `-1ns`, which the original maps to a year, keeps working.
 */
export function parseTimeout(text: string): number | undefined {
  const t = text.trim();
  if (t === '-1' || t === '-1ns') return Infinity;
  const ms = parseGoDuration(t);
  if (ms === undefined || ms < 0) return undefined;
  return ms;
}

export const TIMEOUT_HINT = 'must look like 10s or 15m or 1.5h, or -1 for no timeout';

const SIZE_UNITS: Readonly<Record<string, number>> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

export type SizeResult = { ok: true; bytes: number } | { ok: false; message: string };

/** Parse a Size: `""` is 0, `preserve-size` is -1, else N followed by B, K, M or G. */
export function parseSize(text: string): SizeResult {
  if (text === '') return { ok: true, bytes: 0 };
  if (text === 'preserve-size') return { ok: true, bytes: -1 };
  const digits = text.slice(0, -1);
  if (!/^\d+$/.test(digits)) return { ok: false, message: `invalid size string: ${JSON.stringify(text)} (write a number followed by B, K, M or G, such as 512M)` };
  const unit = SIZE_UNITS[text.slice(-1)];
  if (unit === undefined) return { ok: false, message: `unknown size suffix in ${JSON.stringify(text)}, must be one of: B, K, M, G` };
  return { ok: true, bytes: Number(digits) * unit };
}

/** Human form of a duration for logs: `5m0s`-like Go formatting is not needed; `1m30s`, `15m`, `2h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'never';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
