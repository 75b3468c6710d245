/**
 * Markers in the console log for CI log viewers. The console reporter calls
 * these around scripts and failures; the command line picks them from the
 * environment:
 *
 * - GitHub Actions (`GITHUB_ACTIONS=true`): a failure's message and output
 *   fold into a `::group::` titled with the error line, followed by an
 *   `::error::` annotation naming the job, which GitHub lists on the run's
 *   page with the last lines of the output.
 * - Travis (`TRAVIS=true`), as the original writes them: `travis_time`
 *   start and end lines around every script, and a multi-line failure
 *   wrapped in `travis_fold` lines (plus a `.` line, which the original
 *   prints to work around a Travis display bug), timed as well.
 */

/** A script, as the console knows it: the same key at its start and its end. */
export interface ScriptMark {
  readonly at: number;
  readonly key: string;
}

/** A failure message as the console prints it: `text` is the timestamped log text, `message` the bare one. */
export interface FailureMark {
  readonly at: number;
  readonly message: string;
  readonly text: string;
  /** The job or context the failure belongs to (`backend:system:suite/task:variant`). */
  readonly context: string;
  /** When the failed script started (the failure is timed from there). @default at */
  readonly startedAt?: number;
  /** The output of a debug script, which follows the failure's own message: folded, not annotated again. */
  readonly debug?: boolean;
}

export interface LogMarkers {
  /** Written before a script's "Preparing/Executing/Restoring ..." line. */
  scriptStart(s: ScriptMark): string;
  /** Written when the script ends. */
  scriptEnd(s: ScriptMark): string;
  /** The failure's log text, wrapped. */
  failure(f: FailureMark): string;
}

/** The markers for the CI this runs in, if it is one that has them. */
export function ciMarkers(env: Readonly<Record<string, string | undefined>>): LogMarkers | undefined {
  if (env['GITHUB_ACTIONS'] === 'true') return githubMarkers();
  if (env['TRAVIS'] === 'true') return travisMarkers();
  return undefined;
}

/** Lines of output shown in a GitHub annotation (the rest is in the group). */
const ANNOTATION_LINES = 10;

// Workflow command escaping: data escapes %, CR and LF; property values also : and ,.
const escapeData = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string): string => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

export function githubMarkers(): LogMarkers {
  return {
    scriptStart: () => '',
    scriptEnd: () => '',
    failure: ({ message, text, context, debug }) => {
      const [first = '', ...rest] = message.split('\n');
      const title = first.replace(/\s*:\s*$/, '');
      const body = rest.filter((l) => l !== '-----');
      const shown = body.slice(-ANNOTATION_LINES);
      const annotation = [title, ...(body.length > shown.length ? ['(...)'] : []), ...shown].join('\n');
      const error = debug ? '' : `::error title=${escapeProperty(`spread: ${context}`)}::${escapeData(annotation)}\n`;
      return rest.length === 0 ? `${text}${error}` : `::group::${title}\n${text}::endgroup::\n${error}`;
    },
  };
}

export function travisMarkers(): LogMarkers {
  const started = new Map<string, number>();
  const ns = (ms: number): bigint => BigInt(Math.round(ms)) * 1_000_000n;
  const id = (startNs: bigint): string => (startNs & 0xffffffffn).toString(16);
  const timeStart = (startNs: bigint) => `travis_time:start:${id(startNs)}\n`;
  const timeEnd = (startNs: bigint, endMs: number) => {
    const end = ns(endMs) > startNs ? ns(endMs) : startNs;
    return `travis_time:end:${id(startNs)}:start=${startNs},finish=${end},duration=${end - startNs}\n`;
  };
  return {
    scriptStart: ({ at, key }) => {
      started.set(key, at);
      return timeStart(ns(at));
    },
    scriptEnd: ({ at, key }) => {
      const start = started.get(key) ?? at;
      started.delete(key);
      return timeEnd(ns(start), at);
    },
    failure: ({ at, message, text, startedAt }) => {
      // A nanosecond after its script's start, as the original does, so its id differs.
      const start = ns(startedAt ?? at) + 1n;
      const timed = `${timeStart(start)}${text}${timeEnd(start, at)}`;
      if (!message.includes('\n')) return timed;
      return `travis_fold:start:fold-${id(start)}\n${timed}travis_fold:end:fold-${id(start)}\n.\n`;
    },
  };
}
