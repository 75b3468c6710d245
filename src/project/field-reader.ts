/**
 * Typed access to the fields of one YAML map, after schema validation has
 * vouched for the types. Every accessor knows where its value was written,
 * so semantic errors (a bad duration, a bad name) point at the exact line.
 */
import type { Node, YAMLMap } from 'yaml';
import { parseSize, parseTimeout, TIMEOUT_HINT } from './duration.js';
import { ConfigError } from './errors.js';
import { findPair, isMap, isScalar, isSeq, scalarText, viaOfItem, viaOfPair, whereOfNode } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';
import type { Env, Where } from './types.js';

export class FieldReader {
  constructor(
    readonly src: YamlSource,
    readonly node: YAMLMap | null,
    /** Where the map itself starts (or its key, for an empty value). */
    readonly at: Where,
  ) {}

  /** A reader of the map `node`; `at` says where it is, and the alias it was reached through (`at.via`), if any. */
  static of(src: YamlSource, node: unknown, at?: Where): FieldReader {
    const map = isMap(node) ? (node as YAMLMap) : null;
    return new FieldReader(src, map, at ?? whereOfNode(src, map));
  }

  has(key: string): boolean {
    return this.node ? findPair(this.node, key) !== undefined : false;
  }

  raw(key: string): Node | null {
    const pair = this.node ? findPair(this.node, key) : undefined;
    return (pair?.value as Node | undefined) ?? null;
  }

  /** Where the value of `key` is written (its key when it is empty), or where this map is. */
  where(key?: string): Where {
    if (key === undefined || !this.node) return this.at;
    const pair = findPair(this.node, key);
    if (!pair) return this.at;
    return whereOfNode(this.src, (pair.value as Node | null) ?? (pair.key as Node), viaOfPair(this.src, pair) ?? this.at.via);
  }

  /** The items of the list at `key` with where each is written. */
  items(key: string): [node: unknown, where: Where][] {
    const node = this.raw(key);
    if (!isSeq(node)) return [];
    const via = this.where(key).via;
    return node.items.map((item, i) => [item, whereOfNode(this.src, item as Node, viaOfItem(this.src, node, i) ?? via)]);
  }

  /** A string field: the literal text written, "" when absent or null. */
  str(key: string): string {
    return scalarText(this.raw(key));
  }

  /** A script field: trimmed, as the original does at load. */
  script(key: string): string {
    return this.str(key).trim();
  }

  list(key: string): string[] {
    const node = this.raw(key);
    return isSeq(node) ? node.items.map(scalarText) : [];
  }

  bool(key: string): boolean {
    const node = this.raw(key);
    return isScalar(node) && node.value === true;
  }

  /** An integer field; undefined when absent or null (for "is set" semantics). */
  int(key: string): number | undefined {
    const node = this.raw(key);
    return isScalar(node) && typeof node.value === 'number' ? node.value : undefined;
  }

  timeout(key: string): number {
    const node = this.raw(key);
    if (!isScalar(node) || node.value === null) return 0;
    const text = scalarText(node);
    const ms = parseTimeout(text);
    if (ms === undefined) throw new ConfigError(`${key} ${TIMEOUT_HINT}, not ${JSON.stringify(text)}`, this.where(key));
    return ms;
  }

  size(key: string): number {
    const result = parseSize(this.str(key));
    if (!result.ok) throw new ConfigError(`${key}: ${result.message}`, this.where(key));
    return result.bytes;
  }

  /** An environment map in written order; values keep their literal text. */
  env(key = 'environment'): Env {
    const node = this.raw(key);
    if (!isMap(node)) return [];
    return (node as YAMLMap).items.map((p) => [scalarText(p.key), scalarText(p.value)] as const);
  }

  /** The sub-map at key (an empty reader when absent or null). */
  map(key: string): FieldReader {
    const node = this.raw(key);
    return FieldReader.of(this.src, node, this.where(key));
  }

  /** Keys of this map with their value nodes, in written order (merge keys applied). */
  entries(): [key: string, value: Node | null, where: Where][] {
    if (!this.node) return [];
    return this.node.items.map((p) => [scalarText(p.key), (p.value as Node | null) ?? null, whereOfNode(this.src, p.key as Node, viaOfPair(this.src, p) ?? this.at.via)]);
  }
}
