/**
 * GNU tar `--transform` expressions (`rename:` in spread.yaml), parsed and applied the way GNU tar 1.34's
 * src/transform.c does, with POSIX regexes (glibc flavour) translated to JS RegExps.
 *
 * Syntax: `s<d>REGEX<d>REPLACEMENT<d>[FLAGS]`, any delimiter `<d>`, several expressions in one string
 * separated by `;`, and `flags=XYZ;` to change the default scope of the expressions that follow.
 * Flags: `g` all matches, a number N (C `strtoul` base 0, so `010` is 8) to start at the Nth match, `i`
 * ignore case, `x` extended regex, and `r`/`s`/`h` (uppercase to disable) for member names, symlink
 * targets and hardlink targets; by default an expression applies to all three.
 *
 * GNU quirks kept on purpose, because the remote tree must look like the original's:
 * - the regex text is handed over as written: `s|a\|b|X|` is a BRE alternation, not a literal `|`;
 * - a regex starting with `^` or ending with `$` applies once even with `g`;
 * - each further match is searched in the rest of the name as a new string (so `^` can match there);
 * - with a match number, the text before each skipped match is emitted twice (`s/b/X/2` turns `abab`
 *   into `aabaX`), as tar 1.34 does;
 * - `\u \l \U \L \E` case conversion applies to ASCII letters only.
 * Deviations: GNU tar loops forever on an empty match under `g` (a regex such as `x*`); here the search
 * moves on one character instead. Overall matches are leftmost-longest (POSIX) whenever the regex has an
 * alternation or a repeated group; submatches inside an equally long match follow JS's first path.
 *
 * Pure: no I/O.
 */
import { BracketError, charAt, escapeChar, parseBracket } from './tar-exclude.js';

/** What a name is: the member's own name, a symlink target, or a hardlink target. */
export type TransformTarget = 'regular' | 'symlink' | 'hardlink';

export class TransformError extends Error {
  override readonly name = 'TransformError';
}

type Segment =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'ref'; readonly group: number }
  | { readonly kind: 'case'; readonly ctl: CaseCtl };
type CaseCtl = 'stop' | 'upNext' | 'lowNext' | 'up' | 'low';

interface Expression {
  readonly regex: RegExp;
  readonly source: string;
  readonly flags: string;
  readonly longest: boolean;
  readonly global: boolean;
  readonly matchNumber: number;
  readonly targets: ReadonlySet<TransformTarget>;
  readonly replacement: readonly Segment[];
  /** For the longest-match search: the regex forced to end k characters before the end, by k. */
  readonly endAt: Map<number, RegExp>;
}

/** A compiled list of `--transform` arguments, applied in order. */
export interface Transformer {
  readonly isEmpty: boolean;
  apply(name: string, target: TransformTarget): string;
}

const FLAG_TARGET: Readonly<Record<string, TransformTarget>> = { r: 'regular', s: 'symlink', h: 'hardlink' };
const ESCAPES: Readonly<Record<string, string>> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
const CASES: Readonly<Record<string, CaseCtl>> = { L: 'low', l: 'lowNext', U: 'up', u: 'upNext', E: 'stop' };

/** Parses `rename:` entries (each one `--transform` argument). Throws TransformError like tar's usage errors. */
export const parseTransforms = (args: readonly string[]): Transformer => {
  const expressions: Expression[] = [];
  let defaults = new Set<TransformTarget>(['regular', 'symlink', 'hardlink']);
  for (const arg of args) {
    let rest = arg;
    while (rest !== '') {
      if (rest.startsWith('flags=')) {
        const end = rest.indexOf(';');
        const spec = rest.slice(6, end < 0 ? undefined : end);
        defaults = new Set();
        for (const c of spec) setTarget(defaults, c, () => `unknown transform flag: ${c}`, arg);
        rest = end < 0 ? '' : rest.slice(end + 1);
        continue;
      }
      const parsed = parseExpression(rest, defaults, arg);
      expressions.push(parsed.expression);
      rest = parsed.rest;
    }
  }
  return {
    isEmpty: expressions.length === 0,
    apply: (name, target) =>
      expressions.reduce((acc, e) => (e.targets.has(target) ? applyExpression(e, acc) : acc), name),
  };
};

const fail = (arg: string, detail: string): never => {
  throw new TransformError(`invalid transform expression ${JSON.stringify(arg)}: ${detail}`);
};

const setTarget = (set: Set<TransformTarget>, c: string, message: () => string, arg: string): void => {
  const target = FLAG_TARGET[c.toLowerCase()];
  if (target === undefined) fail(arg, message());
  else if (c === c.toLowerCase()) set.add(target);
  else set.delete(target);
};

// Finds the next unescaped delimiter, the way tar scans (a backslash skips the next char).
const scan = (text: string, from: number, delim: string): number => {
  let i = from;
  for (; i < text.length && text[i] !== delim; i++) if (text[i] === '\\' && i + 1 < text.length) i++;
  return i < text.length ? i : -1;
};

const parseExpression = (text: string, defaults: ReadonlySet<TransformTarget>, arg: string) => {
  if (text[0] !== 's' || text.length < 2) fail(arg, 'expected s/regex/replacement/[flags]');
  const delim = text[1]!;
  const regexEnd = scan(text, 2, delim);
  const replEnd = regexEnd < 0 ? -1 : scan(text, regexEnd + 1, delim);
  if (replEnd < 0) fail(arg, `missing closing "${delim}"`);
  const targets = new Set(defaults);
  let global = false, icase = false, extended = false, matchNumber = 0;
  let p = replEnd + 1;
  for (; p < text.length && text[p] !== ';'; p++) {
    const c = text[p]!;
    if (c === 'g') global = true;
    else if (c === 'i') icase = true;
    else if (c === 'x') extended = true;
    else if (c >= '0' && c <= '9') {
      const m = /^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text.slice(p))!;
      matchNumber = Number(m[0].startsWith('0') && !/^0[xX]/.test(m[0]) ? parseInt(m[0], 8) : m[0]);
      p += m[0].length - 1;
    } else setTarget(targets, c, () => `unknown flag "${c}"`, arg);
  }
  const regexText = text.slice(2, regexEnd);
  let translated: { source: string; groups: number; longest: boolean };
  try {
    translated = translateRegex(regexText, extended);
  } catch (err) {
    return fail(arg, (err as Error).message);
  }
  const flags = `su${icase ? 'i' : ''}`;
  const expression: Expression = {
    regex: new RegExp(translated.source, flags),
    source: translated.source,
    flags,
    longest: translated.longest,
    global: global && !regexText.startsWith('^') && !regexText.endsWith('$'),
    matchNumber,
    targets,
    replacement: parseReplacement(text.slice(regexEnd + 1, replEnd), delim, translated.groups, arg),
    endAt: new Map(),
  };
  return { expression, rest: text.slice(p < text.length ? p + 1 : p) };
};

const parseReplacement = (text: string, delim: string, groups: number, arg: string): Segment[] => {
  const out: Segment[] = [];
  const push = (s: string) => {
    if (s !== '') out.push({ kind: 'text', text: s });
  };
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '&') {
      push(literal);
      literal = '';
      out.push({ kind: 'ref', group: 0 });
    } else if (c !== '\\' || i + 1 >= text.length) literal += c;
    else {
      const n = text[++i]!;
      if (n >= '0' && n <= '9') {
        const digits = /^[0-9]+/.exec(text.slice(i))![0];
        if (Number(digits) > groups) fail(arg, 'back reference out of range');
        push(literal);
        literal = '';
        out.push({ kind: 'ref', group: Number(digits) });
        i += digits.length - 1;
      } else if (CASES[n] !== undefined) {
        push(literal);
        literal = '';
        out.push({ kind: 'case', ctl: CASES[n]! });
      } else if (ESCAPES[n] !== undefined) literal += ESCAPES[n];
      else if (n === '\\' || n === '&' || n === delim) literal += n;
      else literal += `\\${n}`; // tar keeps unknown escapes as written
    }
  }
  push(literal);
  return out;
};

const asciiCase = (s: string, up: boolean): string =>
  s.replace(up ? /[a-z]+/g : /[A-Z]+/g, (m) => (up ? m.toUpperCase() : m.toLowerCase()));

const convert = (ctl: CaseCtl, s: string): string =>
  ctl === 'up' || ctl === 'low'
    ? asciiCase(s, ctl === 'up')
    : ctl === 'stop' || s === ''
      ? s
      : asciiCase(s[0]!, ctl === 'upNext') + s.slice(1);

interface Match {
  readonly index: number;
  readonly end: number;
  readonly groups: readonly (string | undefined)[];
}

const search = (e: Expression, input: string): Match | undefined => {
  const m = e.regex.exec(input);
  if (!m) return undefined;
  let best: RegExpExecArray = m;
  if (e.longest) {
    // JS stops at the first alternative that matches; POSIX wants the longest match at this start.
    for (let end = input.length; end > m.index + m[0].length; end--) {
      const k = input.length - end;
      let re = e.endAt.get(k);
      if (!re) e.endAt.set(k, (re = new RegExp(`(?:${e.source})(?=[^]{${k}}$)`, `${e.flags}y`)));
      re.lastIndex = m.index;
      const longer = re.exec(input);
      if (longer) {
        best = longer;
        break;
      }
    }
  }
  return { index: best.index, end: best.index + best[0].length, groups: [...best] };
};

// Mirrors tar's _single_transform_name_to_obstack, including its case-control state machine.
const applyExpression = (e: Expression, name: string): string => {
  let out = '';
  let input = name;
  let count = 0;
  let ctl: CaseCtl = 'stop';
  let saved: CaseCtl = 'stop';
  const emit = (s: string) => {
    if (ctl === 'stop') return void (out += s);
    out += convert(ctl, s);
    if (ctl === 'upNext' || ctl === 'lowNext') [ctl, saved] = [saved, 'stop'];
  };
  while (input !== '') {
    const m = search(e, input);
    let advance = input.length;
    if (!m) out += input;
    else {
      advance = m.end;
      out += input.slice(0, m.index);
      count++;
      if (e.matchNumber && count < e.matchNumber) {
        out += input.slice(0, m.end);
        input = input.slice(m.end);
        continue;
      }
      for (const seg of e.replacement) {
        if (seg.kind === 'text') emit(seg.text);
        else if (seg.kind === 'ref') {
          const g = m.groups[seg.group];
          if (g !== undefined) emit(g);
        } else {
          if ((seg.ctl === 'upNext' || seg.ctl === 'lowNext') && saved !== 'upNext' && saved !== 'lowNext') saved = ctl;
          ctl = seg.ctl;
        }
      }
      if (e.global && m.end === m.index) {
        out += input.slice(m.end, m.end + 1); // tar would spin here forever
        advance = m.end + 1;
      }
    }
    input = input.slice(advance);
    if (!e.global) {
      out += input;
      break;
    }
  }
  return out;
};

const WORD = '[\\p{L}\\p{N}_]';
const BACKSLASH_OPS: Readonly<Record<string, string>> = {
  '<': `(?<!${WORD})(?=${WORD})`,
  '>': `(?<=${WORD})(?!${WORD})`,
  b: `(?:(?<!${WORD})(?=${WORD})|(?<=${WORD})(?!${WORD}))`,
  B: `(?:(?<=${WORD})(?=${WORD})|(?<!${WORD})(?!${WORD}))`,
  '`': '(?<![^])',
  "'": '(?![^])',
};
const BACKSLASH_ATOMS: Readonly<Record<string, string>> = { w: WORD, W: '[^\\p{L}\\p{N}_]', s: '\\s', S: '\\S' };

interface Piece {
  src: string;
  kind: 'atom' | 'anchor' | 'repeated';
}

/**
 * Translates a glibc POSIX basic (or, with `extended`, extended) regex to JS RegExp source for the `su`
 * flags. `groups` is the number of subexpressions; `longest` says whether leftmost-first and POSIX
 * leftmost-longest may disagree. Throws on what regcomp rejects.
 */
export const translateRegex = (re: string, extended: boolean): { source: string; groups: number; longest: boolean } => {
  const stack: { alternatives: string[]; pieces: Piece[]; group: number }[] = [];
  let alternatives: string[] = [];
  let pieces: Piece[] = [];
  let groups = 0;
  let longest = false;
  const closed = new Set<number>();
  // In a BRE, `^` anchors only where an expression starts; `*` there is literal.
  let atStart = true;
  const last = () => pieces[pieces.length - 1];
  const repeat = (q: string, token: string) => {
    const p = last();
    if (!p || p.kind === 'anchor') {
      if (extended) throw new Error('invalid preceding regular expression');
      pieces.push({ src: escapeChar(token), kind: 'atom' });
      return;
    }
    // glibc's BREs refuse `*` or `\{` right after another repetition (`a**`), but take `a*\?`.
    if (!extended && p.kind === 'repeated' && (token === '*' || token === '{')) {
      throw new Error('invalid preceding regular expression');
    }
    if (p.kind === 'repeated' || p.src.startsWith('(')) longest = true;
    p.src = p.kind === 'repeated' ? `(?:${p.src})${q}` : `${p.src}${q}`;
    p.kind = 'repeated';
  };
  const interval = (i: number): number => {
    const close = extended ? '}' : '\\}';
    const m = /^([0-9]*)(,([0-9]*))?/.exec(re.slice(i))!;
    if (!re.startsWith(close, i + m[0].length) || (m[1] === '' && m[2] === undefined)) throw new Error('unmatched \\{');
    const min = m[1] === '' ? 0 : Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
    if ((max !== undefined && max < min) || Math.max(min, max ?? 0) > 0x7fff) throw new Error('invalid content of \\{\\}');
    if (!last() || last()!.kind === 'anchor') throw new Error('invalid preceding regular expression');
    repeat(`{${min}${max === min ? '' : `,${max ?? ''}`}}`, '{');
    return i + m[0].length + close.length - 1;
  };
  for (let i = 0; i < re.length; i++) {
    const c = re[i]!;
    const wasStart = atStart;
    atStart = false;
    const esc = c === '\\';
    if (esc && i + 1 >= re.length) throw new Error('trailing backslash');
    const t = esc ? re[++i]! : c;
    const op = (bre: string) => (extended ? !esc && c === bre : esc && t === bre);
    if (op('(')) {
      stack.push({ alternatives, pieces, group: ++groups });
      alternatives = [];
      pieces = [];
      atStart = true;
    } else if (op(')') && stack.length > 0) {
      const outer = stack.pop()!;
      const body = [...alternatives, pieces.map((p) => p.src).join('')].join('|');
      closed.add(outer.group);
      ({ alternatives, pieces } = outer);
      pieces.push({ src: `(${body})`, kind: 'atom' });
    } else if (op(')') && !extended) throw new Error('unmatched ) or \\)');
    else if (op('|')) {
      alternatives.push(pieces.map((p) => p.src).join(''));
      pieces = [];
      longest = true;
      atStart = true;
    } else if (op('{')) i = interval(i + 1);
    else if (!esc && c === '*') repeat('*', '*');
    else if (op('+') || op('?')) repeat(t, t);
    else if (esc && t >= '1' && t <= '9') {
      if (!closed.has(Number(t))) throw new Error('invalid back reference');
      pieces.push({ src: `(?:\\${t})`, kind: 'atom' });
    } else if (esc && BACKSLASH_OPS[t] !== undefined) pieces.push({ src: BACKSLASH_OPS[t]!, kind: 'anchor' });
    else if (esc && BACKSLASH_ATOMS[t] !== undefined) pieces.push({ src: BACKSLASH_ATOMS[t]!, kind: 'atom' });
    else if (!esc && c === '^' && (extended || wasStart)) pieces.push({ src: '^', kind: 'anchor' });
    else if (!esc && c === '$' && (extended || i + 1 === re.length || re.startsWith('\\)', i + 1) || re.startsWith('\\|', i + 1)))
      pieces.push({ src: '$', kind: 'anchor' });
    else if (!esc && c === '.') pieces.push({ src: '[^]', kind: 'atom' });
    else if (!esc && c === '[') {
      let bracket;
      try {
        bracket = parseBracket(re, i, 'regex');
      } catch (err) {
        throw err instanceof BracketError ? new Error(err.message) : err;
      }
      if (!bracket) throw new Error('unmatched [, [^, [:, [., or [=');
      pieces.push({ src: bracket.source, kind: 'atom' });
      i = bracket.end;
    } else {
      const ch = charAt(re, i);
      pieces.push({ src: escapeChar(ch), kind: 'atom' });
      i += ch.length - 1;
    }
  }
  if (stack.length > 0) throw new Error('unmatched ( or \\(');
  return { source: [...alternatives, pieces.map((p) => p.src).join('')].join('|'), groups, longest };
};
