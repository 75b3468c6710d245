/**
 * Command-line flags with the semantics of Go's `flag` package, which the
 * original uses and its users type: `-x` or `--x`, `-x=v` or `-x v` (not for
 * booleans, where `-x=false` is the only way to turn one off), parsing stops
 * at the first positional argument or at `--`. Written by hand because no
 * Node parser reproduces those rules exactly.
 */

export type FlagKind = 'bool' | 'string' | 'int';

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly help: string;
  /** Shown as `-name=<arg>` in the help. */
  readonly arg?: string;
}

export type FlagValues = Record<string, boolean | string | number | undefined>;

export interface ParsedArgs {
  readonly values: FlagValues;
  readonly positional: readonly string[];
  readonly help: boolean;
}

/** A usage error: the caller prints it with the usage and exits 2, as Go does. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values: FlagValues = {};
  let help = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.length < 2 || !arg.startsWith('-')) break;
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw new FlagError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    let value = eq < 0 ? undefined : body.slice(eq + 1);
    if (name === 'h' || name === 'help') {
      help = true;
      continue;
    }
    const spec = byName.get(name);
    if (!spec) throw new FlagError(`flag provided but not defined: -${name}`);
    if (spec.kind === 'bool') {
      if (value === undefined) values[name] = true;
      else if (/^(1|t|T|TRUE|true|True)$/.test(value)) values[name] = true;
      else if (/^(0|f|F|FALSE|false|False)$/.test(value)) values[name] = false;
      else throw new FlagError(`invalid boolean value ${JSON.stringify(value)} for -${name}: parse error`);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      value = argv[++i]!;
    }
    if (spec.kind === 'int') {
      if (!/^[-+]?\d+$/.test(value)) throw new FlagError(`invalid value ${JSON.stringify(value)} for flag -${name}: parse error`);
      values[name] = Number(value);
    } else {
      values[name] = value;
    }
  }
  return { values, positional: argv.slice(i), help };
}

export function formatUsage(specs: readonly FlagSpec[], usageLine: string): string {
  const left = specs.map((s) => `  -${s.name}${s.kind === 'bool' ? '' : `=<${s.arg ?? s.kind}>`}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  return [usageLine, '', ...specs.map((s, i) => `${left[i]!.padEnd(width)}${s.help}`), ''].join('\n');
}
