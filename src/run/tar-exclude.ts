/**
 * GNU tar `--exclude=PATTERN` matching, as `tar c` applies it by default (checked against GNU tar 1.34):
 *
 * - wildcards on (`*`, `?`, `[...]`, `\x` escapes), and `*`/`?` also match `/` (`--wildcards-match-slash`);
 * - unanchored: the pattern may start at the beginning of the name or right after any `/`
 *   (`.git` excludes `a/b/.git`; `src/*.o` excludes `src/a.o`, `src/sub/b.o` and `x/src/c.o`);
 * - leading-dir: a match may stop before a `/`, so `src` also excludes `src/a.c` when that name is
 *   given on its own;
 * - case-sensitive; a leading dot needs no special match (`*` excludes `.git`);
 * - names are matched as tar sees them before any `--transform`, without trailing slashes
 *   (so `src/` never excludes the directory `src`).
 *
 * Pure: no I/O. The bracket parser is shared with the `--transform` regex translation.
 */

/** Matches a member name (pre-transform, as walked: `src/a.o`, `./src`) against compiled patterns. */
export type ExcludeMatcher = (name: string) => boolean;

/** Compiles GNU tar exclude patterns into one predicate; no patterns never exclude. */
export const compileExcludes = (patterns: readonly string[]): ExcludeMatcher => {
  const regexps = patterns.map(compileExclude);
  return (name) => regexps.some((re) => re.test(name));
};

/** One pattern as a RegExp that searches a full member name (see the module comment for the rules). */
export const compileExclude = (pattern: string): RegExp =>
  // Starting after a `/` whose next char is another `/` is skipped, as gnulib's exclude_fnmatch does.
  new RegExp(`(?:^|(?<=/)(?!/))(?:${globSource(pattern)})(?=/|$)`, 'su');

/** fnmatch(3) without FNM_PATHNAME/FNM_PERIOD/FNM_NOESCAPE, as a RegExp source. */
export const globSource = (glob: string): string => {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '[^]*';
    else if (c === '?') out += '[^]';
    else if (c === '[') {
      const bracket = parseBracket(glob, i, 'glob');
      if (bracket) {
        out += bracket.source;
        i = bracket.end;
      } else out += escapeChar(c); // an unterminated `[` is an ordinary character
    } else {
      if (c === '\\' && i + 1 < glob.length) i++;
      const ch = charAt(glob, i);
      out += escapeChar(ch);
      i += ch.length - 1;
    }
  }
  return out;
};

/** The whole code point at `text[i]` (one or two UTF-16 units). */
export const charAt = (text: string, i: number): string => String.fromCodePoint(text.codePointAt(i)!);

/** Escapes one character for a `u`-mode RegExp, in or out of a class. */
export const escapeChar = (c: string): string =>
  /^[A-Za-z0-9_]$/.test(c) ? c : `\\u{${c.codePointAt(0)!.toString(16)}}`;

// POSIX classes as they behave in a UTF-8 locale, close enough for file names.
const CLASSES: Readonly<Record<string, string>> = {
  alpha: '\\p{L}',
  digit: '0-9',
  alnum: '\\p{L}\\p{Nd}',
  upper: '\\p{Lu}',
  lower: '\\p{Ll}',
  space: '\\s',
  blank: ' \\t',
  punct: '\\p{P}\\p{S}',
  graph: '\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}',
  print: '\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}\\p{Zs}',
  cntrl: '\\p{Cc}',
  xdigit: '0-9A-Fa-f',
};

export class BracketError extends Error {
  override readonly name = 'BracketError';
}

/**
 * Parses a bracket expression starting at `text[start] === '['`. In `glob` mode (fnmatch) `!` also
 * negates and a backslash escapes the next character; in `regex` mode (regcomp) a backslash is an
 * ordinary character. Returns undefined when there is no closing `]` (the `[` is then literal).
 * Throws BracketError for what regcomp rejects (unknown class, reversed range).
 */
export const parseBracket = (
  text: string,
  start: number,
  mode: 'glob' | 'regex',
): { source: string; end: number } | undefined => {
  let i = start + 1;
  let negate = false;
  if (text[i] === '^' || (mode === 'glob' && text[i] === '!')) {
    negate = true;
    i++;
  }
  const items: string[] = [];
  let first = true;
  // Reads one bracket element (a char or a collating/equivalence element) and returns it.
  const element = (): string | undefined => {
    const c = text[i];
    if (c === undefined) return undefined;
    if (c === '[' && (text[i + 1] === '.' || text[i + 1] === '=')) {
      const kind = text[i + 1]!;
      const close = text.indexOf(`${kind}]`, i + 2);
      if (close < 0) return undefined;
      const inner = text.slice(i + 2, close);
      if ([...inner].length !== 1) throw new BracketError(`invalid collation character "${inner}"`);
      i = close + 2;
      return inner;
    }
    if (mode === 'glob' && c === '\\' && i + 1 < text.length) {
      i += 2;
      return text[i - 1];
    }
    const ch = charAt(text, i);
    i += ch.length;
    return ch;
  };
  for (;;) {
    if (i >= text.length) return undefined;
    if (text[i] === ']' && !first) break;
    first = false;
    if (text[i] === '[' && text[i + 1] === ':') {
      const close = text.indexOf(':]', i + 2);
      if (close < 0) return undefined;
      const name = text.slice(i + 2, close);
      const cls = CLASSES[name];
      if (cls === undefined) {
        if (mode === 'regex') throw new BracketError(`invalid character class name "${name}"`);
      } else items.push(cls);
      i = close + 2;
      continue;
    }
    const low = element();
    if (low === undefined) return undefined;
    if (text[i] === '-' && text[i + 1] !== undefined && text[i + 1] !== ']') {
      i++;
      const high = element();
      if (high === undefined) return undefined;
      if (low.codePointAt(0)! > high.codePointAt(0)!) {
        if (mode === 'regex') throw new BracketError(`invalid range end "${low}-${high}"`);
        continue; // fnmatch: an empty range matches nothing
      }
      items.push(`${escapeChar(low)}-${escapeChar(high)}`);
    } else items.push(escapeChar(low));
  }
  const body = items.join('');
  // An empty class must still be valid JS: `[]` matches nothing, `[^]` anything.
  return { source: `[${negate ? '^' : ''}${body}]`, end: i };
};
