/**
 * Script output as it travels from a machine to the reports: bytes, never
 * decoded on the way (a task may print anything), and bounded, so a task
 * printing gigabytes costs a fixed amount of memory. The first bytes and
 * the last bytes are kept; the middle is counted and shown as a marker.
 * The full bytes only go to `-logs` files, which are written as the chunks
 * arrive.
 *
 * Shared by the code that runs scripts and by the reporters: it imports
 * nothing of either (only project/ helpers).
 */
import { isUtf8 } from 'node:buffer';
import { utf8SequenceLength } from './project/utf8.js';

/** Bounded output: `head`, then `elided` bytes not kept, then `tail`. */
export interface Output {
  readonly head: Buffer;
  /** Bytes dropped between head and tail; when 0, head holds everything and tail is empty. */
  readonly elided: number;
  readonly tail: Buffer;
}

export interface OutputLimits {
  /** Bytes kept from the start. */
  readonly headBytes: number;
  /** Bytes kept from the end. */
  readonly tailBytes: number;
}

/**
 * 1 MiB per script: 256 KiB from the start and 768 KiB from the end (where
 * a failure usually shows). Outputs up to that size are kept whole.
 */
export const OUTPUT_LIMITS: OutputLimits = { headBytes: 256 * 1024, tailBytes: 768 * 1024 };

export const EMPTY_OUTPUT: Output = { head: Buffer.alloc(0), elided: 0, tail: Buffer.alloc(0) };

/** Total size of the output as the script printed it. */
export const outputSize = (o: Output): number => o.head.length + o.elided + o.tail.length;

export const isEmptyOutput = (o: Output): boolean => outputSize(o) === 0;

/** A whole output from bytes or text (bounded like any other). */
export function outputOf(data: string | Uint8Array, limits: OutputLimits = OUTPUT_LIMITS): Output {
  const b = new OutputBuffer(limits);
  b.push(typeof data === 'string' ? Buffer.from(data) : data);
  return b.output();
}

/**
 * Collects output chunks within limits: the head fills first, then a ring
 * of the last `tailBytes` bytes; memory is allocated as the output grows.
 */
export class OutputBuffer {
  private headParts: Buffer[] = [];
  private headLength = 0;
  private headClosed = false;
  private ring: Buffer | undefined;
  private ringStart = 0;
  private ringLength = 0;
  private dropped = 0;
  private total = 0;

  constructor(private readonly limits: OutputLimits = OUTPUT_LIMITS) {}

  /** Bytes seen so far, kept or not. */
  get size(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.total += data.length;
    if (!this.headClosed) {
      const room = this.limits.headBytes - this.headLength;
      const taken = data.subarray(0, room);
      if (taken.length > 0) {
        this.headParts.push(Buffer.from(taken));
        this.headLength += taken.length;
      }
      data = data.subarray(taken.length);
      if (data.length === 0) return;
      this.headClosed = true;
    }
    this.pushTail(data);
  }

  /** `n` bytes the caller could not keep (they were elided upstream). */
  skip(n: number): void {
    if (n <= 0) return;
    this.headClosed = true;
    this.total += n;
    this.dropped += this.ringLength + n;
    this.ringStart = 0;
    this.ringLength = 0;
  }

  /** Appends another output, its own elision included. */
  append(o: Output): void {
    this.push(o.head);
    this.skip(o.elided);
    this.push(o.tail);
  }

  output(): Output {
    const head = Buffer.concat(this.headParts, this.headLength);
    const tail = this.tailBytes();
    if (this.dropped === 0) return { head: tail.length ? Buffer.concat([head, tail]) : head, elided: 0, tail: Buffer.alloc(0) };
    return { head, elided: this.dropped, tail };
  }

  private pushTail(data: Buffer): void {
    const cap = this.limits.tailBytes;
    if (cap === 0) {
      this.dropped += data.length;
      return;
    }
    if (data.length >= cap) {
      this.dropped += this.ringLength + data.length - cap;
      this.ring ??= Buffer.allocUnsafe(cap);
      data.copy(this.ring, 0, data.length - cap);
      this.ringStart = 0;
      this.ringLength = cap;
      return;
    }
    this.grow(Math.min(cap, this.ringLength + data.length));
    const ring = this.ring!;
    const overflow = this.ringLength + data.length - ring.length;
    if (overflow > 0) {
      this.dropped += overflow;
      this.ringStart = (this.ringStart + overflow) % ring.length;
      this.ringLength -= overflow;
    }
    let at = (this.ringStart + this.ringLength) % ring.length;
    let rest = data;
    while (rest.length > 0) {
      const n = Math.min(rest.length, ring.length - at);
      rest.copy(ring, at, 0, n);
      rest = rest.subarray(n);
      at = (at + n) % ring.length;
    }
    this.ringLength += data.length;
  }

  // The ring starts small and doubles up to the cap, keeping its bytes in order.
  private grow(needed: number): void {
    if (this.ring && this.ring.length >= needed) return;
    const size = Math.min(this.limits.tailBytes, Math.max(needed, 2 * (this.ring?.length ?? 0), 4096));
    const next = Buffer.allocUnsafe(size);
    const kept = this.tailBytes();
    kept.copy(next, 0);
    this.ring = next;
    this.ringStart = 0;
    this.ringLength = kept.length;
  }

  private tailBytes(): Buffer {
    const ring = this.ring;
    if (!ring || this.ringLength === 0) return Buffer.alloc(0);
    const end = this.ringStart + this.ringLength;
    if (end <= ring.length) return Buffer.from(ring.subarray(this.ringStart, end));
    return Buffer.concat([ring.subarray(this.ringStart), ring.subarray(0, end - ring.length)]);
  }
}

/** Outputs one after the other with `separator` between them, as one bounded output. */
export function joinOutputs(parts: readonly Output[], separator = '\n', limits: OutputLimits = OUTPUT_LIMITS): Output {
  if (parts.length === 1) return parts[0]!;
  const b = new OutputBuffer(limits);
  const sep = Buffer.from(separator);
  parts.forEach((o, i) => {
    if (i > 0) b.push(sep);
    b.append(o);
  });
  return b.output();
}

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** Bytes without leading and trailing ASCII whitespace. */
export function trimBytes(b: Buffer): Buffer {
  let s = 0;
  let e = b.length;
  while (s < e && isSpace(b[s]!)) s++;
  while (e > s && isSpace(b[e - 1]!)) e--;
  return b.subarray(s, e);
}

/** Without leading and trailing whitespace (bytes.TrimSpace, as the original trims outputs). */
export function trimOutput(o: Output): Output {
  if (o.elided === 0) {
    const head = trimBytes(o.head);
    return head.length === o.head.length ? o : { head, elided: 0, tail: o.tail };
  }
  let s = 0;
  while (s < o.head.length && isSpace(o.head[s]!)) s++;
  let e = o.tail.length;
  while (e > 0 && isSpace(o.tail[e - 1]!)) e--;
  return { head: o.head.subarray(s), elided: o.elided, tail: o.tail.subarray(0, e) };
}

/** Without `prefix` at the very start, when it is there. */
export function stripPrefix(o: Output, prefix: string): Output {
  const p = Buffer.from(prefix);
  if (o.head.length < p.length || !o.head.subarray(0, p.length).equals(p)) return o;
  return { ...o, head: o.head.subarray(p.length) };
}

/** The marker shown where bytes were elided; `see` names where the full output is. */
export const elisionMarker = (bytes: number, see?: string): string =>
  `\n(... ${bytes} bytes elided${see ? `, full output in ${see}` : ''} ...)\n`;

/** The bytes to show: head, the elision marker when something was dropped, tail. */
export function outputBytes(o: Output, see?: string): Buffer {
  if (o.elided === 0) return o.head;
  return Buffer.concat([o.head, Buffer.from(elisionMarker(o.elided, see)), o.tail]);
}

/**
 * Text for places that cannot carry arbitrary bytes (JSON, XML, regular
 * expressions): valid UTF-8 as it is, every other byte as `\xNN`, and the
 * elision marker.
 */
export function outputText(o: Output, see?: string): string {
  return escapeBytes(outputBytes(o, see));
}

/** Valid UTF-8 decoded, each byte of an invalid sequence written as `\xNN`. */
export function escapeBytes(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(b)) return b.toString('utf8');
  let text = '';
  let start = 0;
  let i = 0;
  while (i < b.length) {
    const n = utf8SequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    text += b.toString('utf8', start, i) + `\\x${b[i]!.toString(16).padStart(2, '0')}`;
    i++;
    start = i;
  }
  return text + b.toString('utf8', start, i);
}

/** The last line (after the last newline), as text; within the kept bytes. */
export function lastLine(o: Output): string {
  const end = o.elided === 0 ? o.head : o.tail;
  const at = end.lastIndexOf(0x0a);
  return escapeBytes(end.subarray(at + 1));
}

/** Whether the output has more than one line (is framed by dashes in errors). */
export const isMultiline = (o: Output): boolean => o.elided > 0 || o.head.includes(0x0a) || o.tail.includes(0x0a);

/**
 * How a warn-timeout shows the output since the last warning, in the
 * original's words: unchanged, still empty, or the new lines framed.
 */
export function lateOutput(section: Buffer | undefined): Buffer {
  if (section === undefined) return Buffer.from('Output unchanged.');
  if (section.length === 0) return Buffer.from('Output still empty.');
  return Buffer.concat([Buffer.from('Current output:\n-----\n'), section, Buffer.from('\n-----')]);
}

/**
 * The last 10 lines, noting how many are above when there are more than 13
 * (`lines` counts the newlines of the whole text when only its end is given).
 */
export function lastLines(text: Buffer, lines?: number): Buffer {
  const newlines: number[] = [];
  for (let i = text.length - 1; i >= 0 && newlines.length < 13; i--) if (text[i] === 0x0a) newlines.push(i);
  const total = lines ?? (newlines.length < 13 ? newlines.length : countNewlines(text));
  if (total < 13) return text;
  const cut = newlines.length >= 10 ? newlines[9]! + 1 : 0;
  return Buffer.concat([Buffer.from(`(... ${total - 10} lines above ...)\n`), text.subarray(cut)]);
}

export function countNewlines(b: Uint8Array, from = 0): number {
  let n = 0;
  for (let i = b.indexOf(0x0a, from); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}
