/**
 * YAML parsing that keeps positions. spread's files are YAML 1.1 (the Go
 * original uses yaml.v2), so `yes`/`no` are booleans, while string fields keep
 * the literal text written (`1.10` stays "1.10"), taken from the scalar source.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { isUtf8 } from 'node:buffer';
import { ConfigError } from './errors.js';
import { firstInvalidUtf8 } from './utf8.js';
import { AliasProblem, resolveDocument } from './yaml-aliases.js';
import { parseFast } from './yaml-fast.js';
import type { AliasUse, Resolution } from './yaml-aliases.js';
import type { Via, Where } from './types.js';

export interface YamlSource {
  /** Path as shown in messages (relative to the project dir where possible). */
  readonly file: string;
  /** The document's root node (null for an empty document). */
  readonly contents: Node | null;
  /** Offsets to line and column (1-based). */
  readonly lines: { linePos(offset: number): { line: number; col: number } };
  /** The document as plain JavaScript values (for schema validation), aliases and merge keys resolved. */
  readonly value: unknown;
  /** Which values were reached through an alias or merge key (see yaml-aliases.ts). */
  readonly resolution: Resolution;
}

/**
 * The text of a YAML file: UTF-8 (or UTF-16 with a byte order mark, as YAML
 * allows); any other byte is refused at its line and column, as the
 * original refuses it, rather than read as U+FFFD.
 */
export function decodeYaml(file: string, bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const at = firstInvalidUtf8(bytes);
  const lineStart = bytes.lastIndexOf(0x0a, at - 1) + 1;
  let line = 1;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < at; i = bytes.indexOf(0x0a, i + 1)) line++;
  const column = bytes.subarray(lineStart, at).toString('utf8').length + 1;
  throw new ConfigError(`invalid UTF-8: byte 0x${bytes[at]!.toString(16).padStart(2, '0')} (save the file as UTF-8)`, { file, line, column });
}

/** Parse one file; a syntax error becomes a one-line ConfigError at its position. */
export function parseYaml(file: string, text: string): YamlSource {
  const parsed = parseFast(text) ?? parseFull(file, text);
  const { contents, lines } = parsed;
  try {
    const { value, resolution } = resolveDocument(contents);
    return { file, contents, lines, value, resolution };
  } catch (err) {
    if (!(err instanceof AliasProblem)) throw err;
    const pos = lines.linePos(err.offset);
    throw new ConfigError(`invalid YAML: ${err.message}`, { file, line: pos.line, column: pos.col });
  }
}

/** The `yaml` package's parser, for what the fast path declines (and for its error messages). */
function parseFull(file: string, text: string): { contents: Node | null; lines: YamlSource['lines'] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { version: '1.1', lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const pos = lines.linePos(error.pos[0]);
    const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`invalid YAML: ${lowerFirst(what)}`, { file, line: pos.line, column: pos.col });
  }
  return { contents: doc.contents as Node | null, lines };
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/** Position of a node (or of the document start when the node is missing), reached through `via` if given. */
export function whereOfNode(src: YamlSource, node: Node | null | undefined, via?: Via): Where {
  const offset = node?.range?.[0];
  const at = offset === undefined ? { line: 1, col: 1 } : src.lines.linePos(offset);
  return via ? { file: src.file, line: at.line, column: at.col, via } : { file: src.file, line: at.line, column: at.col };
}

/** Where the alias that brought a value was written, for messages. */
export function viaOf(src: YamlSource, use: AliasUse | undefined): Via | undefined {
  if (!use) return undefined;
  const pos = src.lines.linePos(use.offset);
  return { line: pos.line, column: pos.col, written: use.written };
}

/** The alias that brought the value of a pair (or a merged pair), if any. */
export const viaOfPair = (src: YamlSource, pair: Pair): Via | undefined => viaOf(src, src.resolution.pairs.get(pair));

/** The alias that brought the item at `index` of a sequence, if any. */
export const viaOfItem = (src: YamlSource, seq: YAMLSeq, index: number): Via | undefined =>
  viaOf(src, src.resolution.items.get(seq)?.get(index));

/** A node found by path, with the innermost alias crossed on the way. */
export interface Located {
  readonly node: Node | null;
  readonly via?: Via | undefined;
}

/** The node at a path of map keys and sequence indexes, as far as it exists. */
export function locate(src: YamlSource, path: readonly (string | number)[]): Located {
  let node: unknown = src.contents;
  let via: Via | undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = findPair(node as YAMLMap, String(key));
      if (!pair) return { node: null, via };
      via = viaOfPair(src, pair) ?? via;
      node = pair.value;
    } else if (isSeq(node)) {
      via = viaOfItem(src, node, Number(key)) ?? via;
      node = node.items[Number(key)];
    } else {
      return { node: null, via };
    }
    if (node === undefined) return { node: null, via };
  }
  return { node: (node as Node) ?? null, via };
}

/** The key node of `key` in the map at `path` (to point at an unknown key itself). */
export function locateKey(src: YamlSource, path: readonly (string | number)[], key: string): Located {
  const found = locate(src, path);
  if (!isMap(found.node)) return found;
  const pair = findPair(found.node as YAMLMap, key);
  if (!pair) return found;
  return { node: pair.key as Node, via: viaOfPair(src, pair) ?? found.via };
}

/** The pair of a map whose key reads as `key` (the first one). */
export function findPair(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && scalarText(p.key) === key);
}

/**
 * The text of a scalar as spread reads it into a string field: the literal
 * source for plain scalars (`1.10`, `yes`), the value for quoted and block
 * scalars, "" for null or a missing node.
 */
export function scalarText(node: unknown): string {
  if (!isScalar(node)) return '';
  const value = (node as Scalar).value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return (node as Scalar).source ?? String(value);
}

export type { Pair, YAMLMap, YAMLSeq, Node };
export { isMap, isScalar, isSeq };
