/**
 * Anchors, aliases and merge keys, resolved the way gopkg.in/yaml.v2 (the
 * original's loader) resolves them, in place on a parsed document, so the
 * rest of the loader reads plain maps, lists and scalars:
 *
 * - an alias stands for the node its anchor names: the latest anchor of that
 *   name written before the alias; an anchor whose value holds an alias to
 *   itself is refused, as yaml.v2 refuses it;
 * - `<<: *a` and `<<: [*a, *b]` copy the pairs of the merged maps into the map
 *   that holds the merge key, at the position where the key is written: a key
 *   written after `<<` wins over a merged one, a key written before it loses
 *   (yaml.v2 decodes in written order); in a list of merged maps an earlier
 *   map wins over a later one. A key keeps the position of its first
 *   appearance; its value is the winning one;
 * - yaml.v2 decodes the project's `backends:` and `suites:` into Go maps that a
 *   later decode adds to rather than replaces, so a top-level merge that
 *   brings either of them unions it with the file's own, key by key.
 *
 * Nodes reached through an alias are shared, not copied: resolving is linear
 * in the file's size. Expanding the shared nodes into plain values is where an
 * alias bomb would explode, so `toPlainValue` counts as it goes and refuses a
 * file where alias expansion dominates, with yaml.v2's own ratio.
 *
 * Written by hand because the `yaml` package merges with YAML 1.2 rules (a
 * local key always wins, wherever it is written) and its own alias expansion
 * forgets where each value was reached from, which error messages need.
 */
import { isAlias, isMap, isScalar, isSeq, Pair, visit, YAMLMap } from 'yaml';
import type { Alias, Node, Scalar, YAMLSeq } from 'yaml';

/** Where an alias (or a merge key's alias) that brought a value was written: an offset in the file. */
export interface AliasUse {
  readonly offset: number;
  /** As written: `*name`, or `<<: *name` for a merge. */
  readonly written: string;
}

export interface Resolution {
  /** Map pairs whose value came through an alias or a merge. */
  readonly pairs: WeakMap<Pair, AliasUse>;
  /** Sequence items that were aliases, by index. */
  readonly items: WeakMap<YAMLSeq, ReadonlyMap<number, AliasUse>>;
}

/** A problem with the anchors of a file, at an offset in it. */
export class AliasProblem extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

/** Keys of the top-level map that yaml.v2 decodes into Go maps (merged key by key, see above). */
const UNION_KEYS: ReadonlySet<string> = new Set(['backends', 'suites']);

const isMergeKey = (key: unknown): boolean =>
  isScalar(key) && typeof key.value === 'symbol' && key.value.description === '<<';

const keyText = (key: unknown): string | undefined => {
  if (!isScalar(key)) return undefined;
  const value = (key as Scalar).value;
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : ((key as Scalar).source ?? String(value));
};

/** Resolve every alias and merge key of a document (its root node) in place. Throws AliasProblem. */
function resolveAliases(root: Node | null): Resolution {
  const resolution: Resolution = { pairs: new WeakMap(), items: new WeakMap() };
  if (!root) return resolution;
  const targets = aliasTargets(root);
  const done = new Set<Node>();
  const active = new Set<Node>();

  const use = (alias: Alias, merge = false): AliasUse => ({ offset: alias.range?.[0] ?? 0, written: `${merge ? '<<: ' : ''}*${alias.source}` });

  /** The node an alias stands for, itself resolved. */
  const follow = (alias: Alias): Node => {
    const target = targets.get(alias);
    if (!target) throw new AliasProblem(`unresolved alias *${alias.source} (define the anchor &${alias.source} before using it)`, alias.range?.[0] ?? 0);
    if (active.has(target)) throw new AliasProblem(`anchor &${alias.source} contains an alias to itself (*${alias.source}); a value cannot include itself`, alias.range?.[0] ?? 0);
    resolve(target, false);
    return target;
  };

  const resolve = (node: Node | null, isRoot: boolean): void => {
    if (!node || done.has(node) || isScalar(node)) return;
    active.add(node);
    if (isSeq(node)) {
      const uses = new Map<number, AliasUse>();
      node.items.forEach((item, i) => {
        if (isAlias(item)) {
          uses.set(i, use(item));
          node.items[i] = follow(item);
        } else {
          resolve(item as Node, false);
        }
      });
      if (uses.size > 0) resolution.items.set(node, uses);
    } else if (isMap(node)) {
      for (const pair of node.items) {
        if (isAlias(pair.key)) pair.key = follow(pair.key);
        const merge = isMergeKey(pair.key);
        if (isAlias(pair.value)) {
          resolution.pairs.set(pair, use(pair.value, merge));
          pair.value = follow(pair.value);
        } else {
          resolve(pair.value as Node | null, false);
        }
      }
      if (node.items.some((p) => isMergeKey(p.key))) node.items = mergedItems(node, isRoot, resolution);
    }
    active.delete(node);
    done.add(node);
  };
  resolve(root, true);
  return resolution;
}

/** Each alias's node: the latest anchor of its name written before it (one pass in document order). */
function aliasTargets(root: Node): Map<Alias, Node> {
  const anchors = new Map<string, Node>();
  const targets = new Map<Alias, Node>();
  visit(root, {
    Node: (_, node) => {
      if (isAlias(node)) {
        const target = anchors.get(node.source);
        if (target) targets.set(node, target);
      } else if (node.anchor) {
        anchors.set(node.anchor, node);
      }
    },
  });
  return targets;
}

/** The pairs of a map with its merge keys applied in written order (see the file comment). */
function mergedItems(map: YAMLMap, isRoot: boolean, resolution: Resolution): Pair[] {
  const out = new Map<string | Pair, Pair>();
  const put = (pair: Pair): void => {
    const text = keyText(pair.key);
    const slot = text ?? pair;
    const old = out.get(slot);
    if (isRoot && text !== undefined && UNION_KEYS.has(text) && old && isMap(old.value) && isMap(pair.value)) {
      out.set(slot, unionPair(old, pair, resolution));
      return;
    }
    out.set(slot, pair);
  };
  for (const pair of map.items) {
    if (!isMergeKey(pair.key)) {
      put(pair);
      continue;
    }
    const value = pair.value as Node | null;
    const viaMerge = resolution.pairs.get(pair);
    const sources: { map: YAMLMap; via: AliasUse | undefined }[] = [];
    if (isMap(value)) {
      sources.push({ map: value, via: viaMerge });
    } else if (isSeq(value)) {
      const uses = resolution.items.get(value);
      value.items.forEach((item, i) => {
        if (!isMap(item)) throw notMap(item as Node, pair);
        const via = uses?.get(i);
        sources.push({ map: item, via: via ? { ...via, written: `<<: ${via.written}` } : viaMerge });
      });
      sources.reverse(); // applied last to first, so an earlier map wins
    } else {
      throw notMap(value, pair);
    }
    for (const source of sources) {
      for (const sp of source.map.items) {
        const copy = new Pair(sp.key, sp.value);
        const via = resolution.pairs.get(sp) ?? source.via;
        if (via) resolution.pairs.set(copy, via);
        put(copy);
      }
    }
  }
  return [...out.values()];
}

/** yaml.v2's Go-map decoding: the pairs of both maps, the later one's winning per key. */
function unionPair(old: Pair, later: Pair, resolution: Resolution): Pair {
  const union = new YAMLMap();
  const byKey = new Map<string | Pair, Pair>();
  for (const [owner, map] of [[old, old.value], [later, later.value]] as const) {
    const ownerVia = resolution.pairs.get(owner);
    for (const p of (map as YAMLMap).items) {
      const copy = new Pair(p.key, p.value);
      const via = resolution.pairs.get(p) ?? ownerVia;
      if (via) resolution.pairs.set(copy, via);
      byKey.set(keyText(p.key) ?? copy, copy);
    }
  }
  union.items = [...byKey.values()];
  union.range = (old.value as YAMLMap).range;
  return new Pair(old.key, union);
}

const notMap = (node: Node | null, pair: Pair): AliasProblem =>
  new AliasProblem('a merge key (<<) needs a map, an alias of a map, or a list of them', (node ?? (pair.key as Node)).range?.[0] ?? 0);

/**
 * yaml.v2's limit on alias expansion (its allowedAliasRatio): up to 99% of
 * the values decoded may come from aliases in a document of under 400,000
 * values, scaling down to 10% at 4,000,000.
 */
function allowedAliasRatio(decodes: number): number {
  const low = 400_000;
  const high = 4_000_000;
  if (decodes <= low) return 0.99;
  if (decodes >= high) return 0.1;
  return 0.99 - 0.89 * ((decodes - low) / (high - low));
}

/**
 * Resolve the document's aliases and merge keys (when it has any: most files
 * have none, and skip the resolving pass) and return it as plain values.
 */
export function resolveDocument(root: Node | null): { readonly value: unknown; readonly resolution: Resolution } {
  const none: Resolution = { pairs: new WeakMap(), items: new WeakMap() };
  try {
    return { value: toPlainValue(root, none, true), resolution: none };
  } catch (err) {
    if (err !== UNRESOLVED) throw err;
  }
  const resolution = resolveAliases(root);
  return { value: toPlainValue(root, resolution, false), resolution };
}

/** Thrown by toPlainValue at the first alias or merge key of a document not yet resolved. */
const UNRESOLVED = new Error('unresolved');

/**
 * The resolved document as plain values (for schema validation): scalars
 * keep their YAML 1.1 types, except those JSON has no type for (timestamps,
 * binary), which become their text; map keys are their text. Throws
 * AliasProblem when alias expansion dominates (a "billion laughs" file).
 */
function toPlainValue(root: Node | null, resolution: Resolution, detect: boolean): unknown {
  let decodes = 0;
  let aliased = 0;
  let lastAlias: AliasUse | undefined;
  const count = (via: AliasUse | undefined): void => {
    decodes++;
    if (!via) return;
    aliased++;
    lastAlias = via;
    if (aliased > 100 && decodes > 1000 && aliased / decodes > allowedAliasRatio(decodes)) {
      throw new AliasProblem(`too much alias expansion: the aliases of this file expand to more than ${decodes} values, mostly copies (an alias bomb?); use fewer nested aliases`, lastAlias.offset);
    }
  };
  const convert = (node: unknown, via: AliasUse | undefined): unknown => {
    count(via);
    if (detect && isAlias(node)) throw UNRESOLVED;
    if (isScalar(node)) {
      const value = node.value;
      if (value === null || value === undefined) return null;
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
      return keyText(node);
    }
    if (isSeq(node)) {
      const uses = resolution.items.get(node);
      return node.items.map((item, i) => convert(item, uses?.get(i) ?? via));
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        if (detect && (isMergeKey(pair.key) || isAlias(pair.key))) throw UNRESOLVED;
        const key = keyText(pair.key) ?? String(pair.key);
        const value = convert(pair.value, resolution.pairs.get(pair) ?? via);
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return null;
  };
  return convert(root, undefined);
}
