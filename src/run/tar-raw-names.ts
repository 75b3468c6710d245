/**
 * File names that are not valid UTF-8 (a Latin-1 `café.txt` from an old
 * archive): Linux allows any bytes but NUL and `/`, and the project must
 * reach the machines with those exact bytes.
 *
 * Inside spread a name is a string; bytes that are not part of valid UTF-8
 * are carried as lone surrogates U+DC80..U+DCFF (Python's "surrogateescape"),
 * so matching, renaming and sorting work on the valid parts as usual, and
 * `encodeName` gives the bytes back for the file system and the archive.
 *
 * In the archive, tar-stream can only write UTF-8 names (in a pax header),
 * so such a name goes the way GNU tar writes long names: a `././@LongLink`
 * member (type `L`, or `K` for a link target) holding the raw bytes, before
 * the member itself. tar-stream has no such type, so those members are
 * written as plain files with a marker in their user name and fixed up in
 * the byte stream (`longLinkFixer`). GNU tar and busybox tar read them.
 */
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { utf8SequenceLength } from '../project/utf8.js';

const ESCAPED = /[\udc80-\udcff]/;

/** A name read from the file system, with its non-UTF-8 bytes escaped. */
export function decodeName(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SequenceLength(bytes, i);
    if (n > 0) {
      out += bytes.toString('utf8', i, i + n);
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + bytes[i]!);
      i++;
    }
  }
  return out;
}

/** Whether a name carries bytes that are not UTF-8. */
export const hasRawBytes = (name: string): boolean => ESCAPED.test(name);

/** The exact bytes of a name made by decodeName (or of any ordinary string). */
export function encodeName(name: string): Buffer {
  if (!hasRawBytes(name)) return Buffer.from(name);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // A low surrogate right after a high one is half of a real character.
    const paired = i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff;
    if (c >= 0xdc80 && c <= 0xdcff && !paired) {
      parts.push(Buffer.from(name.slice(start, i)), Buffer.from([c - 0xdc00]));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(name.slice(start)));
  return Buffer.concat(parts);
}

/** Orders names by their bytes, as GNU tar's --sort=name does. */
export const byNameBytes = (a: string, b: string): number => Buffer.compare(encodeName(a), encodeName(b));

/** The user name that marks a stand-in for a GNU long-name member; `L` for a name, `K` for a link target. */
export const longLinkMarker = (kind: 'L' | 'K'): string => `spread-longlink-${kind}`;

/** An ASCII stand-in for a name whose real bytes travel in a long-name member before it. */
export const standIn = (name: string): string => name.replace(/[^\x20-\x7e]/g, '_').slice(-100).replace(/^\/+/, '') || '_';

const BLOCK = 512;

// A header's size field: octal text, or big-endian base 256 past 8 GiB (as tar-stream writes it).
const sizeOf = (h: Buffer): number => {
  if (h[124]! & 0x80) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i]!;
    return n;
  }
  return parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
};

/**
 * Turns the marked stand-ins into real GNU long-name members: name
 * `././@LongLink`, type `L` or `K`, no user name, fixed checksum. Every
 * other byte passes through unchanged.
 */
export function longLinkFixer(): Transform {
  let pending = Buffer.alloc(0);
  let skip = 0; // body bytes (with padding) still to pass through
  let ended = false; // two zero blocks seen
  const marker = (kind: 'L' | 'K') => Buffer.from(longLinkMarker(kind));
  const fix = (h: Buffer): void => {
    const uname = h.subarray(265, 265 + 32);
    const kind = (['L', 'K'] as const).find((k) => uname.subarray(0, marker(k).length).equals(marker(k)) && uname[marker(k).length] === 0);
    if (!kind) return;
    h.fill(0, 0, 100);
    h.write('././@LongLink', 0, 'latin1');
    h.fill(0, 265, 265 + 32);
    h[156] = kind.charCodeAt(0);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += h[i]!;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      let data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      pending = Buffer.alloc(0);
      const out: Buffer[] = [];
      while (data.length > 0) {
        if (skip > 0 || ended) {
          const n = ended ? data.length : Math.min(skip, data.length);
          out.push(data.subarray(0, n));
          data = data.subarray(n);
          skip -= ended ? 0 : n;
          continue;
        }
        if (data.length < BLOCK) {
          pending = Buffer.from(data);
          break;
        }
        const header = Buffer.from(data.subarray(0, BLOCK));
        data = data.subarray(BLOCK);
        if (header.every((b) => b === 0)) {
          ended = true;
        } else {
          fix(header);
          const size = sizeOf(header);
          // Only files and these members have bodies in tar-stream's output (pax headers too).
          skip = Math.ceil(size / BLOCK) * BLOCK;
        }
        out.push(header);
      }
      done(null, out.length ? Buffer.concat(out) : undefined);
    },
    flush(done: TransformCallback) {
      done(null, pending.length ? pending : undefined);
    },
  });
}
