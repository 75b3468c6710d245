/**
 * YAML parsing that keeps positions. spread's files are YAML 1.1 (the Go
 * original uses yaml.v2), so `yes`/`no` are booleans, while string fields keep
 * the literal text written (`1.10` stays "1.10"), taken from the scalar source.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { Document, Node, Pair, Scalar, YAMLMap } from 'yaml';
import { isUtf8 } from 'node:buffer';
import { ConfigError } from './errors.js';
import { firstInvalidUtf8 } from './utf8.js';
import type { Where } from './types.js';

export interface YamlSource {
  /** Path as shown in messages (relative to the project dir where possible). */
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  /** The document as plain JavaScript values (for schema validation). */
  readonly value: unknown;
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
  const lines = new LineCounter();
  const doc = parseDocument(text, { version: '1.1', lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const pos = lines.linePos(error.pos[0]);
    const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`invalid YAML: ${lowerFirst(what)}`, { file, line: pos.line, column: pos.col });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 10_000 });
  } catch (err) {
    throw aliasError({ file, doc, lines, value: undefined }, err as Error);
  }
  return { file, doc, lines, value };
}

/** toJS() fails only on aliases: point at the first one that does not resolve. */
function aliasError(src: YamlSource, err: Error): ConfigError {
  let found: ConfigError | undefined;
  visit(src.doc, {
    Alias(_, node) {
      if (node.resolve(src.doc) !== undefined) return undefined;
      found = new ConfigError(`invalid YAML: unresolved alias *${node.source} (define the anchor &${node.source} before using it)`, whereOfNode(src, node));
      return visit.BREAK;
    },
  });
  return found ?? new ConfigError(`invalid YAML: ${err.message}`, { file: src.file });
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/** Position of a node (or of the document start when the node is missing). */
export function whereOfNode(src: YamlSource, node: Node | null | undefined): Where {
  const offset = node?.range?.[0];
  if (offset === undefined) return { file: src.file, line: 1, column: 1 };
  const pos = src.lines.linePos(offset);
  return { file: src.file, line: pos.line, column: pos.col };
}

/** The node at a path of map keys and sequence indexes, as far as it exists. */
export function nodeAt(src: YamlSource, path: readonly (string | number)[]): Node | null {
  let node: unknown = src.doc.contents;
  for (const key of path) {
    if (isMap(node)) node = (node as YAMLMap).get(key, true);
    else if (isSeq(node)) node = node.items[Number(key)];
    else return null;
    if (node === undefined) return null;
  }
  return (node as Node) ?? null;
}

/** The key node of `key` in the map at `path` (to point at an unknown key itself). */
export function keyNodeAt(src: YamlSource, path: readonly (string | number)[], key: string): Node | null {
  const map = nodeAt(src, path);
  if (!isMap(map)) return map;
  const pair = (map as YAMLMap<unknown, unknown>).items.find((p) => isScalar(p.key) && String((p.key as Scalar).value) === key);
  return (pair?.key as Node | undefined) ?? map;
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

export type { Pair, YAMLMap, Node };
export { isMap, isScalar, isSeq };
