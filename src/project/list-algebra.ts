/**
 * The list algebra of `backends:`, `systems:` and `variants:` (spec §4.2).
 * Lists apply in cascade order: a plain list replaces the set, `+x` adds and
 * `-x` removes; every entry may be a glob matched against the names seen in
 * this and earlier lists. Unlike the original, a glob adds only what it
 * matches, never the literal pattern (spec §12).
 */
import { minimatch } from 'minimatch';
import { bareEntry } from './names.js';

const GLOB_CHARS = /[*?[\\]/;
export const isGlob = (name: string): boolean => GLOB_CHARS.test(name);

const matchers = new Map<string, (name: string) => boolean>();

/** Go filepath.Match semantics for names without slashes; minimatch with the extras off. */
export function globMatcher(pattern: string): (name: string) => boolean {
  let fn = matchers.get(pattern);
  if (!fn) {
    const re = minimatch.makeRe(pattern, { dot: true, nobrace: true, noext: true, nonegate: true, nocomment: true });
    if (re === false) throw new Error(`syntax error in pattern ${JSON.stringify(pattern)}`);
    fn = (name: string) => re.test(name);
    matchers.set(pattern, fn);
  }
  return fn;
}

/** The accumulated state after some lists; cheap to copy so shared prefixes can be cached. */
export class ListState {
  private constructor(
    private readonly set: Set<string>,
    private readonly seen: Set<string>,
  ) {}

  static empty(): ListState {
    return new ListState(new Set(), new Set());
  }

  copy(): ListState {
    return new ListState(new Set(this.set), new Set(this.seen));
  }

  /** Apply one list (already checked at load: not mixing plain and delta entries). */
  apply(list: readonly string[]): this {
    for (const entry of list) {
      const name = bareEntry(entry);
      if (!isGlob(name)) this.seen.add(name);
    }
    let first = true;
    for (const entry of list) {
      const name = bareEntry(entry);
      const matches = isGlob(name) ? [...this.seen].filter(globMatcher(name)) : [name];
      if (entry.startsWith('-')) {
        for (const m of matches) this.set.delete(m);
      } else if (entry.startsWith('+')) {
        for (const m of matches) this.set.add(m);
      } else {
        if (first) this.set.clear();
        for (const m of matches) this.set.add(m);
      }
      first = false;
    }
    return this;
  }

  values(): string[] {
    return [...this.set];
  }

  get size(): number {
    return this.set.size;
  }
}

/** Evaluate lists in order from an empty set. */
export const evalLists = (...lists: readonly (readonly string[])[]): string[] => {
  const state = ListState.empty();
  for (const list of lists) state.apply(list);
  return state.values();
};

/** What is wrong with a list as written, if anything (checked at load time). */
export function listProblem(list: readonly string[]): string | undefined {
  const delta = list.some((e) => e.startsWith('+') || e.startsWith('-'));
  const plain = list.some((e) => !(e.startsWith('+') || e.startsWith('-')));
  if (delta && plain) return 'mixes plain entries with +/- entries (use only names to replace the inherited list, or only +name/-name to edit it)';
  for (const e of list) {
    const name = bareEntry(e);
    if (isGlob(name)) {
      try {
        globMatcher(name);
      } catch (err) {
        return (err as Error).message;
      }
    }
  }
  return undefined;
}
