/** The flags of `spread`: the original's, spelled as its users type them. */
import type { FlagSpec } from './flags.js';

export const SPREAD_FLAGS: readonly FlagSpec[] = [
  { name: 'v', kind: 'bool', help: 'Show detailed progress information' },
  { name: 'vv', kind: 'bool', help: 'Show debugging messages as well (full scripts and their output)' },
  { name: 'list', kind: 'bool', help: 'Just show the list of jobs that would run' },
  { name: 'pass', kind: 'string', arg: 'password', help: 'Server password to use, defaults to random' },
  { name: 'reuse', kind: 'bool', help: 'Keep servers running for reuse, and reuse those kept before' },
  { name: 'reuse-pid', kind: 'int', arg: 'pid', help: 'Reuse servers left by the killed process with this pid' },
  { name: 'resend', kind: 'bool', help: 'Resend project content to reused servers' },
  { name: 'debug', kind: 'bool', help: 'Run a shell after script errors' },
  { name: 'shell', kind: 'bool', help: 'Run a shell instead of task scripts' },
  { name: 'shell-before', kind: 'bool', help: 'Run a shell before task scripts' },
  { name: 'shell-after', kind: 'bool', help: 'Run a shell after task scripts' },
  { name: 'abend', kind: 'bool', help: 'Stop without restoring on first error' },
  { name: 'restore', kind: 'bool', help: 'Run only the restore scripts' },
  { name: 'discard', kind: 'bool', help: 'Discard reused servers without running' },
  { name: 'artifacts', kind: 'string', arg: 'dir', help: 'Where to store task artifacts' },
  { name: 'seed', kind: 'int', arg: 'n', help: 'Seed for job order permutation' },
  { name: 'repeat', kind: 'int', arg: 'n', help: 'Number of times to repeat each task' },
  { name: 'gc', kind: 'bool', help: 'Garbage collect backend resources when possible' },
  // Not in the original:
  { name: 'strict', kind: 'bool', help: 'Treat unknown keys in spread.yaml and task.yaml as errors, not warnings' },
  { name: 'repeat-until', kind: 'string', arg: 'regexp', help: 'Hunt a flaky failure: repeat the tasks on every machine at once until a failure whose output matches (up to -repeat times if given, else until Ctrl-C)' },
  { name: 'history', kind: 'bool', help: 'Start the jobs that took longest last time first (default; -history=false for the plain random order)' },
  { name: 'junit', kind: 'string', arg: 'file', help: 'Also write a JUnit XML report of the jobs to this file' },
  { name: 'json', kind: 'string', arg: 'file', help: 'Also write a JSON report of the run and its jobs to this file' },
  { name: 'logs', kind: 'string', arg: 'dir', help: 'Write the full output and timings of every script to files in this directory, one per job and per level (no ":" in names)' },
  { name: 'artifacts-safe-names', kind: 'bool', help: 'Name -artifacts directories as -logs files are named (":" as "__"), for CI artifact uploaders' },
  { name: 'html', kind: 'string', arg: 'file', help: 'Also write an HTML report (timeline, failures, flaky and slowest jobs) to this file' },
  { name: 'version', kind: 'bool', help: 'Print the version of spread and exit' },
  { name: 'queue', kind: 'string', arg: 'url', help: 'Share the run with other runners through Redis: redis://HOST[:PORT][/DB]/RUN (see docs/shared-queue.md)' },
  { name: 'summary', kind: 'bool', help: 'With -queue: wait for the shared run to end, then print its merged summary and write its reports' },
  { name: 'instance', kind: 'int', arg: 'n', help: 'Which instance of a multi-machine task -debug and -shell open their shell on (default: every failing one for -debug, the first for -shell)' },
];

export const USAGE_LINE = 'Usage: spread [flags] [filter ...]\n\nFilters select jobs named backend:system:suite/task:variant (see docs/matrix.md#filters);\nevery flag is in docs/cli.md, every spread.yaml and task.yaml key in docs/reference.md.';
