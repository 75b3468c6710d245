/**
 * A fast path for the plain shape nearly every task.yaml has: block maps of
 * one-line scalars, `|` scripts, `- item` and `[a, b]` lists of scalars,
 * comments. It builds the same nodes the `yaml` package builds (same classes,
 * values, scalar types and start offsets, checked against it on the snapd
 * corpus in test/project/yaml-fast.test.ts) in a fraction of the time:
 * spread reads one file per task, and the package's general parser (lexer,
 * CST, composer, a schema per document) costs ~40 µs for each, which is most
 * of listing 10,000 tasks. Anything outside that shape (anchors, tags, flow
 * maps, folded or indented blocks, multi-line plain scalars, tabs, a
 * duplicate key, any error) returns undefined, and the caller uses the
 * package's parser, which also gives the error messages.
 */
import { Document, isScalar, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import type { Node, Schema } from 'yaml';

/** One schema for every document: the tags that type plain scalars, YAML 1.1 as the original. */
let schema: Schema | undefined;
const schemaOf = (): Schema => (schema ??= new Document(null, { version: '1.1' }).schema);

interface Line {
  readonly start: number;
  readonly text: string;
  readonly indent: number;
  /** Empty, blank or only a comment: carries no content. */
  readonly empty: boolean;
}

/** Thrown to leave the fast path; never escapes this module. */
const BAIL = Symbol('bail');
const bail = (): never => {
  throw BAIL;
};

export interface FastParse {
  readonly contents: Node | null;
  readonly lines: LazyLines;
}

/**
 * Line starts of a text, found when first asked: only messages need them,
 * and most files never have one. Positions as the package's LineCounter
 * gives them.
 */
export class LazyLines {
  private starts: number[] | undefined;
  constructor(private readonly text: string) {}

  get lineStarts(): number[] {
    if (!this.starts) {
      this.starts = [0];
      for (let i = this.text.indexOf('\n'); i >= 0; i = this.text.indexOf('\n', i + 1)) this.starts.push(i + 1);
    }
    return this.starts;
  }

  linePos(offset: number): { line: number; col: number } {
    const starts = this.lineStarts;
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (starts[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    if (starts[low] === offset) return { line: low + 1, col: 1 };
    if (low === 0) return { line: 0, col: offset };
    return { line: low, col: offset - starts[low - 1]! + 1 };
  }
}

export function parseFast(text: string): FastParse | undefined {
  if (/[\r\t\uFEFF]/.test(text)) return undefined;
  try {
    return new FastParser(text).parse();
  } catch (err) {
    if (err === BAIL) return undefined;
    throw err;
  }
}

class FastParser {
  private readonly lines: Line[] = [];

  constructor(private readonly text: string) {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      const end = nl < 0 ? text.length : nl;
      let indent = start;
      while (indent < end && text.charCodeAt(indent) === 32) indent++;
      const empty = indent === end || text.charCodeAt(indent) === 35; // '#'
      this.lines.push({ start, text: text.slice(start, end), indent: indent - start, empty });
      if (nl < 0) break;
      start = nl + 1;
    }
  }

  parse(): FastParse {
    for (const line of this.lines) if (/^(---|\.\.\.|%)/.test(line.text)) bail();
    const first = this.next(0);
    if (first === this.lines.length) return { contents: null, lines: new LazyLines(this.text) };
    if (this.lines[first]!.indent !== 0) bail();
    const [map, after] = this.map(first, 0);
    if (this.next(after) !== this.lines.length) bail();
    return { contents: map, lines: new LazyLines(this.text) };
  }

  /** The index of the next line with content, from i. */
  private next(i: number): number {
    while (i < this.lines.length && this.lines[i]!.empty) i++;
    return i;
  }

  /** A block map whose keys sit at `indent`, from line i; returns it and the line after it. */
  private map(i: number, indent: number): [YAMLMap, number] {
    const map = new YAMLMap(schemaOf());
    // Keys are unique by value, as the package checks them (`y` and `True` are both true).
    const keys = new Set<unknown>();
    for (i = this.next(i); i < this.lines.length; i = this.next(i)) {
      const line = this.lines[i]!;
      if (line.indent < indent) break;
      if (line.indent > indent) bail();
      const content = line.text.slice(indent);
      const m = /^([^\s#'"[\]{},&*!|>%@`?:-][^\s:]*|-[^\s:]+)(?::$|: +)/.exec(content);
      if (!m) return bail();
      const keyText = m[1]!;
      if (keyText.includes(' #')) bail();
      const key = this.plain(keyText, line.start + indent, true);
      const id = key.value instanceof Date ? key : `${typeof key.value}:${String(key.value)}`;
      if (keys.has(id)) bail();
      keys.add(id);
      const valueAt = indent + m[0].length;
      const [value, after] = this.value(i, indent, valueAt);
      map.items.push(new Pair(key, value));
      i = after;
    }
    map.range = [map.items.length ? (map.items[0]!.key as Node).range![0] : 0, 0, 0];
    return [map, i];
  }

  /** The value of a key on line i (written from column `at`, or on the lines below). */
  private value(i: number, indent: number, at: number): [Node, number] {
    const line = this.lines[i]!;
    const rest = line.text.slice(at);
    if (rest === '' || rest.startsWith('#')) {
      const n = this.next(i + 1);
      const below = this.lines[n];
      if (below && below.indent > indent) {
        const first = below.text.slice(below.indent);
        return first === '-' || first.startsWith('- ') ? this.seq(n, below.indent) : this.map(n, below.indent);
      }
      if (below && below.indent === indent && (below.text.slice(indent) === '-' || below.text.startsWith('- ', indent))) return this.seq(n, indent);
      return [this.empty(line.start + line.text.length), i + 1];
    }
    if (rest.startsWith('|')) return this.literal(i, indent, line.start + at, rest);
    return [this.scalar(rest, line.start + at, false), this.noContinuation(i, indent)];
  }

  /** After a one-line value, a more indented line would continue it: not for the fast path. */
  private noContinuation(i: number, indent: number): number {
    const n = this.next(i + 1);
    if (n < this.lines.length && this.lines[n]!.indent > indent) bail();
    // A comment line between a value and a more indented line still ends the value; keep it simple.
    for (let j = i + 1; j < n; j++) if (this.lines[j]!.text.trim() !== '' && this.lines[j]!.indent > indent) bail();
    return i + 1;
  }

  /** `- item` lines at `indent`, each a one-line scalar. */
  private seq(i: number, indent: number): [YAMLSeq, number] {
    const seq = new YAMLSeq(schemaOf());
    const start = this.lines[i]!.start + indent;
    for (i = this.next(i); i < this.lines.length; i = this.next(i)) {
      const line = this.lines[i]!;
      if (line.indent < indent) break;
      if (line.indent > indent || !line.text.startsWith('- ', indent)) {
        if (line.indent === indent && line.text.slice(indent) !== '-') break;
        bail();
      }
      const itemAt = indent + 2 + (line.text.length - indent - 2 - line.text.slice(indent + 2).trimStart().length);
      const rest = line.text.slice(itemAt);
      if (rest === '' || rest.startsWith('#') || rest.startsWith('|') || /^[^'"[]*: |:$/.test(rest)) bail();
      seq.items.push(this.scalar(rest, line.start + itemAt, false));
      i = this.noContinuation(i, indent);
    }
    seq.range = [start, 0, 0];
    return [seq, i];
  }

  /** A one-line scalar or flow list, with nothing after it but a comment. */
  private scalar(rest: string, offset: number, atKey: boolean): Node {
    const c = rest[0]!;
    if (c === '"' || c === "'") {
      const [node, len] = this.quoted(rest, offset);
      this.onlyComment(rest.slice(len));
      return node;
    }
    if (c === '[') return this.flowSeq(rest, offset);
    if ('{&*!>%@`?,]}#|'.includes(c) || (c === '-' && (rest[1] === ' ' || rest.length === 1)) || (c === ':' && (rest[1] === ' ' || rest.length === 1))) bail();
    const hash = rest.search(/\s#/);
    const text = (hash < 0 ? rest : rest.slice(0, hash)).trimEnd();
    if (/: |:$/.test(text)) bail();
    return this.plain(text, offset, atKey);
  }

  /** A plain scalar typed by the schema's tests, as the package's composer types it. */
  private plain(text: string, offset: number, atKey: boolean): Scalar {
    const tag = schemaOf().tags.find((t) => (t.default === true || (atKey && t.default === 'key')) && t.test?.test(text));
    let node: Scalar;
    if (!tag) {
      node = new Scalar(text);
    } else {
      if (tag.tag === 'tag:yaml.org,2002:merge') bail();
      const resolve = tag.resolve as (value: string, onError: (message: string) => void, options: object) => unknown;
      const res = resolve(text, () => bail(), {});
      node = isScalar(res) ? (res as Scalar) : new Scalar(res);
      if (tag.format) node.format = tag.format;
    }
    node.range = [offset, offset + text.length, offset + text.length];
    node.source = text;
    node.type = Scalar.PLAIN;
    return node;
  }

  private quoted(rest: string, offset: number): [Scalar, number] {
    const q = rest[0]!;
    let value = '';
    let i = 1;
    for (;;) {
      const j = rest.indexOf(q, i);
      if (j < 0) return bail();
      value += rest.slice(i, j);
      if (q === "'" && rest[j + 1] === "'") {
        value += "'";
        i = j + 2;
        continue;
      }
      i = j + 1;
      break;
    }
    if (q === '"' && value.includes('\\')) bail();
    const node = new Scalar(value);
    node.range = [offset, offset + i, offset + i];
    node.source = value;
    node.type = q === '"' ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE;
    return [node, i];
  }

  /** `[a, 'b', c]` on one line. */
  private flowSeq(rest: string, offset: number): YAMLSeq {
    const end = rest.indexOf(']');
    if (end < 0) bail();
    const body = rest.slice(1, end);
    if (/[[{}#"']/.test(body)) bail();
    this.onlyComment(rest.slice(end + 1));
    const seq = new YAMLSeq(schemaOf());
    seq.flow = true;
    let at = 1;
    for (const part of body.split(',')) {
      const lead = part.length - part.trimStart().length;
      const text = part.trim();
      if (text === '') {
        if (part !== body.split(',').at(-1) || body.trim() !== '' && !body.trimEnd().endsWith(',')) bail();
      } else {
        if (/^[-?:](\s|$)|^[&*!|>%@`]|: |:$/.test(text)) bail();
        seq.items.push(this.plain(text, offset + at + lead, false));
      }
      at += part.length + 1;
    }
    seq.range = [offset, offset + end + 1, offset + end + 1];
    return seq;
  }

  private onlyComment(after: string): void {
    if (after.trim() !== '' && !/^\s+#/.test(after)) bail();
  }

  /** `|`, `|-` or `|+` and the more indented lines below, as the package resolves a literal block. */
  private literal(i: number, indent: number, offset: number, header: string): [Scalar, number] {
    const h = /^\|([-+]?)(?:\s*|\s+#.*)$/.exec(header);
    if (!h) return bail();
    const chomp = h[1];
    // The block's lines: more indented than the key, or blank.
    let end = i + 1;
    const body: Line[] = [];
    while (end < this.lines.length) {
      const line = this.lines[end]!;
      const blank = line.text.trim() === '';
      if (!blank && line.indent <= indent) break;
      body.push(line);
      end++;
    }
    // Trailing blank lines belong to the block only for chomping.
    let last = body.length;
    while (last > 0 && body[last - 1]!.text.trim() === '') last--;
    const first = body.findIndex((l) => l.text.trim() !== '');
    let value = '';
    if (first >= 0) {
      if (first > 0) bail(); // leading empty lines: the package's rules are subtle, use it
      const blockIndent = body[0]!.indent;
      for (let k = 0; k < last; k++) {
        const l = body[k]!;
        if (l.text.trim() !== '' && l.indent < blockIndent) bail();
        if (l.text.trim() === '' && l.text.length > blockIndent) bail();
        value += `${l.text.slice(blockIndent)}\n`;
      }
      for (let k = last; k < body.length; k++) if (body[k]!.text.length > blockIndent) bail();
      if (chomp === '-') value = value.slice(0, -1);
      // The empty "line" after a final newline is no line of the block.
      else if (chomp === '+') value += '\n'.repeat(body.length - last - (end === this.lines.length && this.text.endsWith('\n') ? 1 : 0));
    } else if (body.length > 0 || chomp === '+') {
      bail();
    }
    const node = new Scalar(value);
    node.range = [offset, 0, 0];
    node.source = value;
    node.type = Scalar.BLOCK_LITERAL;
    // The lines after the block: the trailing blank ones were part of it.
    return [node, end];
  }

  /** A key with no value: null, as the package composes it. */
  private empty(offset: number): Scalar {
    const node = new Scalar(null);
    node.range = [offset, offset, offset];
    node.source = '';
    node.type = Scalar.PLAIN;
    return node;
  }
}
