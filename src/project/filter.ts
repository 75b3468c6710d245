/**
 * Filter arguments (spec §3.2): each argument becomes a regular expression
 * over job names; a job passes if any argument matches. `...` is a wildcard
 * within a component, `:` separates components that need not be adjacent,
 * and a trailing `#N` or `#N..M` selects samples.
 */
import { ConfigError } from './errors.js';
import type { Job } from './types.js';

interface FilterExp {
  readonly re: RegExp;
  readonly firstSample: number;
  readonly lastSample: number;
}

export interface Filter {
  readonly args: readonly string[];
  pass(job: Pick<Job, 'name' | 'sample'>): boolean;
}

const SAMPLE = /^(.*)#(\d+)(?:\.\.(\d+))?$/;
const RUNS = /\.+|:+|#/g;
const COLON = '(:.+)*:(.+:)*';

export function parseFilter(args: readonly string[]): Filter {
  const exps = args.map(toExp);
  return {
    args,
    pass(job) {
      if (exps.length === 0) return true;
      return exps.some((e) =>
        (e.firstSample === 0 || (job.sample >= e.firstSample && job.sample <= e.lastSample)) && e.re.test(job.name));
    },
  };
}

function toExp(arg: string): FilterExp {
  let body = arg;
  let firstSample = 0;
  let lastSample = 0;
  const m = SAMPLE.exec(body);
  if (m) {
    body = m[1]!;
    firstSample = Number(m[2]);
    lastSample = m[3] === undefined ? firstSample : Number(m[3]);
    if (firstSample < 1 || lastSample < firstSample) throw new ConfigError(`invalid sample range in filter string: ${JSON.stringify(arg)} (use #N or #N..M with 1 <= N <= M)`);
  }
  let bad: string | undefined;
  body = body.replace(RUNS, (run) => {
    if (run === '.') return '\\.';
    if (run === '...') return '[^:]*';
    if (run === ':') return COLON;
    bad ??= run;
    return run;
  });
  if (bad !== undefined) throw new ConfigError(`invalid filter string: ${JSON.stringify(bad)} in ${JSON.stringify(arg)} (use . or ... within a name and single : between components)`);
  if (body.startsWith(COLON) || body.startsWith('/')) body = `.+${body}`;
  if (body.endsWith(':(.+:)*') || body.endsWith('/')) body = `${body}.+`;
  try {
    return { re: new RegExp(`(?:^|:)${body}(?:$|[:#])`), firstSample, lastSample };
  } catch {
    throw new ConfigError(`invalid filter string: ${JSON.stringify(arg)}`);
  }
}
