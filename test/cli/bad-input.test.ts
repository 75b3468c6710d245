/**
 * Malformed projects through the real `spread -list`: each must fail with
 * exactly one line on stderr naming the file and line (marked `#<-` in the
 * fixture unless given), what is wrong, exit status 1, and no stack trace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';
import type { FixtureFiles } from '../helpers/fixture.js';

const TASK = 'summary: a task\nexecute: echo ok\n';

interface Case {
  readonly name: string;
  /** Replaces parts of the base project; `spread.yaml` replaces the whole file. */
  readonly files: FixtureFiles;
  readonly message: RegExp;
  /** file:line expected; default: the file and line holding `#<-`. */
  readonly at?: string;
  readonly args?: readonly string[];
}

/** A valid project with hooks for each level. */
const project = (o: { top?: string; backend?: string; system?: string; suite?: string } = {}): string => `project: demo
path: /remote/demo
backends:
    lxd:
${o.backend ?? ''}        systems:
            - ubuntu-16.04${o.system ?? ''}
suites:
    tests/:
        summary: Tests
${o.suite ?? ''}${o.top ?? ''}`;

const withTask = (task: string, extra: FixtureFiles = {}): FixtureFiles => ({ 'spread.yaml': project(), 'tests/a/task.yaml': task, ...extra });
const withSpread = (spread: string, extra: FixtureFiles = {}): FixtureFiles => ({ 'spread.yaml': spread, 'tests/a/task.yaml': TASK, ...extra });

const CASES: Case[] = [
  // YAML syntax
  { name: 'unclosed flow sequence', files: withSpread(project({ top: 'include: [a, b\n' })), message: /invalid YAML: /, at: 'spread.yaml:11' },
  { name: 'duplicate key', files: withSpread(project({ top: 'path: /again #<-\n' })), message: /invalid YAML: map keys must be unique/ },
  { name: 'bad indentation', files: withSpread('project: demo\n  path: /x\n'), message: /invalid YAML/, at: 'spread.yaml:1' },
  { name: 'unclosed quote', files: withSpread(project({ top: 'repack: "abc\n' })), message: /invalid YAML/, at: 'spread.yaml:11' },
  { name: 'tab indentation', files: withSpread(project({ top: 'environment:\n\tA: b #<-\n' })), message: /invalid YAML/ },
  { name: 'bad YAML in task.yaml', files: withTask('summary: x\nexecute: [oops #<-\n'), message: /invalid YAML/, at: 'tests/a/task.yaml:3' },
  { name: 'duplicate environment key in a task', files: withTask(`${TASK}environment:\n    A: 1\n    A: 2 #<-\n`), message: /map keys must be unique/ },
  { name: 'anchor to nothing', files: withSpread(project({ top: 'exclude: *nothing #<-\n' })), message: /invalid YAML: unresolved alias \*nothing \(define the anchor &nothing before using it\)/ },
  // Types
  { name: 'project is a list', files: withSpread(project().replace('project: demo', 'project: [demo] #<-')), message: /project must be a single value \(text\), not a list or map/ },
  { name: 'backends is a list', files: withSpread('project: demo\npath: /x\nbackends: [lxd] #<-\nsuites:\n    tests/:\n        summary: x\n'), message: /backends must be a map/ },
  { name: 'suites is text', files: withSpread('project: demo\npath: /x\nbackends:\n    lxd:\n        systems: [ubuntu-16.04]\nsuites: tests #<-\n'), message: /suites must be a map/ },
  { name: 'systems is text', files: withSpread('project: demo\npath: /x\nbackends:\n    lxd:\n        systems: ubuntu-16.04 #<-\nsuites:\n    tests/:\n        summary: x\n'), message: /systems must be a list/ },
  { name: 'a system map with two names', files: withSpread(project({ system: '\n            - {a-1: {}, b-2: {}} #<-\n' })), message: /each system must be a name or a one-key map name: \{options\}, not a map of several keys/ },
  { name: 'workers is text', files: withSpread(project({ system: ':\n                workers: two #<-\n' })), message: /workers must be a whole number/ },
  { name: 'negative workers', files: withSpread(project({ system: ':\n                workers: -1 #<-\n' })), message: /backend "lxd" has system "ubuntu-16.04" with -1 workers/ },
  { name: 'priority is text', files: withTask(`${TASK}priority: high #<-\n`), message: /priority must be a whole number/ },
  { name: 'manual is text', files: withTask(`${TASK}manual: maybe #<-\n`), message: /manual must be true or false/ },
  { name: 'samples is text', files: withTask(`${TASK}samples: many #<-\n`), message: /samples must be a whole number/ },
  { name: 'environment is a list', files: withTask(`${TASK}environment: [A, B] #<-\n`), message: /environment must be a map/ },
  { name: 'environment value is a map', files: withTask(`${TASK}environment:\n    A: {b: c} #<-\n`), message: /environment variable A must be a single value/ },
  { name: 'summary is a map', files: withTask('summary: {a: b} #<-\nexecute: x\n'), message: /summary must be a single value/ },
  { name: 'execute is a list', files: withTask('summary: x\nexecute: [a, b] #<-\n'), message: /execute must be a single value \(text\), not a list or map/ },
  { name: 'artifacts is text', files: withTask(`${TASK}artifacts: out.log #<-\n`), message: /artifacts must be a list/ },
  { name: 'variants is a map', files: withSpread(project({ suite: '        variants: {a: b} #<-\n' })), message: /variants must be a list/ },
  { name: 'task.yaml is a list', files: withTask('- summary: x #<-\n'), message: /must be a map/, at: 'tests/a/task.yaml:1' },
  { name: 'spread.yaml is text', files: withSpread('just text #<-\n'), message: /must be a map/ },
  { name: 'backend is a list', files: withSpread('project: demo\npath: /x\nbackends:\n    lxd: [a] #<-\nsuites:\n    tests/:\n        summary: x\n'), message: /lxd must be a map/ },
  // Names
  { name: 'invalid project name', files: withSpread(project().replace('project: demo', 'project: My Project #<-')), message: /invalid project name: "My Project"/ },
  { name: 'invalid backend name', files: withSpread(project().replace('    lxd:', '    LXD: #<-\n        type: lxd')), message: /invalid backend name: "LXD"/ },
  { name: 'invalid system name', files: withSpread(project().replace('- ubuntu-16.04', '- ubuntu #<-')), message: /invalid system name: "ubuntu"/ },
  { name: 'suite without trailing slash', files: withSpread(project().replace('    tests/:', '    tests: #<-')), message: /invalid suite name \(must end with \/\): "tests"/ },
  { name: 'invalid suite name', files: withSpread(project().replace('    tests/:', '    Tests/: #<-'), { 'Tests/a/task.yaml': TASK }), message: /invalid suite name: "Tests\/"/ },
  { name: 'invalid task directory name', files: withSpread(project(), { 'tests/BadTask/task.yaml': `${TASK} #<-\n` }), message: /invalid task name: "tests\/BadTask"/, at: 'tests/BadTask/task.yaml:1' },
  { name: 'invalid variable name', files: withTask(`${TASK}environment:\n    FOO-BAR: x #<-\n`), message: /invalid variable name: "FOO-BAR"/ },
  { name: 'invalid variant suffix', files: withSpread(project({ top: 'environment:\n    FOO/a-b: x #<-\n' })), message: /invalid variable name: "FOO\/a-b"/ },
  { name: 'invalid system name in a suite list', files: withSpread(project({ suite: '        systems: [+fedora] #<-\n' })), message: /suite tests\/ refers to invalid system name: "fedora"/ },
  { name: 'invalid system name in a task list', files: withTask(`${TASK}systems: [ubuntu] #<-\n`), message: /tests\/a refers to invalid system name: "ubuntu"/ },
  // Durations and sizes
  { name: 'warn-timeout without unit', files: withSpread(project({ top: 'warn-timeout: 10 #<-\n' })), message: /warn-timeout must look like 10s or 15m or 1.5h, or -1 for no timeout, not "10"/ },
  { name: 'kill-timeout is a word', files: withSpread(project({ suite: '        kill-timeout: soon #<-\n' })), message: /kill-timeout must look like 10s/ },
  { name: 'task kill-timeout with a bad unit', files: withTask(`${TASK}kill-timeout: 5x #<-\n`), message: /kill-timeout must look like/ },
  { name: 'negative timeout other than -1', files: withTask(`${TASK}warn-timeout: -5m #<-\n`), message: /warn-timeout must look like/ },
  { name: 'halt-timeout bad', files: withSpread(project({ backend: '        halt-timeout: 2 hours #<-\n' })), message: /halt-timeout must look like/ },
  { name: 'storage without suffix', files: withSpread(project({ backend: '        storage: 100 #<-\n' })), message: /unknown size suffix in "100", must be one of: B, K, M, G/ },
  { name: 'fractional memory', files: withSpread(project({ backend: '        memory: 1.5G #<-\n' })), message: /invalid size string: "1.5G"/ },
  { name: 'system storage word', files: withSpread(project({ system: ':\n                storage: lots #<-\n' })), message: /invalid size string: "lots"/ },
  // Lists
  { name: 'unknown backend in a suite list', files: withSpread(project({ suite: '        backends: [qemu] #<-\n' })), message: /suite tests\/ refers to unknown backend "qemu" \(known: lxd\)/ },
  { name: 'unknown backend in a task + list', files: withTask(`${TASK}backends: [+google] #<-\n`), message: /tests\/a refers to unknown backend "google"/ },
  { name: 'mixed plain and delta systems in a suite', files: withSpread(project({ suite: '        systems: [ubuntu-16.04, -debian-9] #<-\n' })), message: /suite tests\/ systems list mixes plain entries with \+\/- entries/ },
  { name: 'mixed variants in a task', files: withTask(`${TASK}variants: [a, +b] #<-\n`), message: /tests\/a variants list mixes plain entries/ },
  { name: 'mixed variants in a backend', files: withSpread(project({ backend: '        variants: [-a, b] #<-\n' })), message: /backend "lxd" variants list mixes plain entries/ },
  { name: 'mixed backends in a task', files: withTask(`${TASK}backends: [lxd, -lxd] #<-\n`), message: /backends list mixes plain entries/ },
  // Structure
  { name: 'task without summary', files: withTask('execute: echo ok #<-\n'), message: /missing summary \(every task needs a one-line summary\)/, at: 'tests/a/task.yaml:1' },
  { name: 'task with blank summary', files: withTask('summary: "  "\nexecute: x\n'), message: /missing summary/, at: 'tests/a/task.yaml:1' },
  { name: 'suite without summary', files: withSpread(project().replace('        summary: Tests\n', '').replace('    tests/:', '    tests/: #<-')), message: /suite tests\/ is missing a summary/ },
  { name: 'null suite', files: withSpread(project().replace('        summary: Tests\n', '').replace('    tests/:', '    tests/: #<-')), message: /is missing a summary/ },
  { name: 'missing project name', files: withSpread(project().replace('project: demo\n', '')), message: /missing project name/, at: 'spread.yaml:1' },
  { name: 'missing path', files: withSpread(project().replace('path: /remote/demo\n', '')), message: /missing project path field/, at: 'spread.yaml:1' },
  { name: 'relative path', files: withSpread(project().replace('path: /remote/demo', 'path: remote/demo')), message: /remote project path must be absolute and not \/: remote\/demo/, at: 'spread.yaml:1' },
  { name: 'root path', files: withSpread(project().replace('path: /remote/demo', 'path: /')), message: /remote project path must be absolute and not \/: \//, at: 'spread.yaml:1' },
  { name: 'no backends', files: withSpread('project: demo\npath: /x\nbackends: {} #<-\nsuites:\n    tests/:\n        summary: x\n'), message: /must define at least one backend/ },
  { name: 'only null backends', files: withSpread('project: demo\npath: /x\nbackends:\n    lxd: #<-\nsuites:\n    tests/:\n        summary: x\n'), message: /must define at least one backend/, at: 'spread.yaml:4' },
  { name: 'no suites', files: withSpread('project: demo\npath: /x\nbackends:\n    lxd:\n        systems: [ubuntu-16.04]\nsuites: {} #<-\n'), message: /must define at least one task suite/ },
  { name: 'backend without systems', files: withSpread('project: demo\npath: /x\nbackends:\n    lxd: #<-\n        type: lxd\nsuites:\n    tests/:\n        summary: x\n'), message: /no systems specified for backend "lxd"/ },
  { name: 'unsupported backend type', files: withSpread(project({ backend: '        type: vmware #<-\n' })), message: /backend "lxd" has unsupported type "vmware"/ },
  { name: 'unsupported type from the name', files: withSpread(project().replace('    lxd:', '    vbox: #<-')), message: /backend "vbox" has unsupported type "vbox"/ },
  { name: 'allocate on a non-adhoc backend', files: withSpread(project({ backend: '        allocate: echo #<-\n' })), message: /backend "lxd" cannot use allocate and discard fields/ },
  { name: 'adhoc without allocate', files: withSpread(project().replace('    lxd:', '    adhoc: #<-')), message: /backend "adhoc" requires an allocate field/ },
  { name: 'absolute artifact path', files: withTask(`${TASK}artifacts: [/etc/passwd] #<-\n`), message: /tests\/a has improper artifact path: \/etc\/passwd/ },
  { name: 'artifact climbing out', files: withTask(`${TASK}artifacts: [../x] #<-\n`), message: /improper artifact path: \.\.\/x/ },
  { name: 'unclean artifact path', files: withTask(`${TASK}artifacts: [a//b] #<-\n`), message: /improper artifact path: a\/\/b/ },
  { name: 'artifact with a dot component', files: withTask(`${TASK}artifacts: [a/./b] #<-\n`), message: /improper artifact path: a\/\.\/b/ },
  { name: 'suite directory missing', files: withSpread(project({ suite: '    other/: #<-\n        summary: x\n' })), message: /cannot list suite other\/: directory other does not exist/ },
  { name: 'failing host command', files: withSpread(project({ top: 'environment:\n    K: $(HOST:echo no >&2; false)\n' })), message: /\$\(HOST:echo no >&2; false\) in project environment \(K\) returned error: no/, at: 'spread.yaml:1' },
];

const markedAt = (files: FixtureFiles): string | undefined => {
  for (const [file, content] of Object.entries(files)) {
    if (typeof content !== 'string') continue;
    const line = content.split('\n').findIndex((l) => l.includes('#<-'));
    if (line >= 0) return `${file}:${line + 1}`;
  }
  return undefined;
};

test(`${CASES.length} malformed projects each fail with one line naming file and line, exit 1, no stack`, async () => {
  assert.ok(CASES.length >= 50);
  const failures: string[] = [];
  const queue = [...CASES];
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const dir = makeProject(c.files);
      try {
        const r = await runSpread(['-list', ...(c.args ?? [])], dir);
        const at = c.at ?? markedAt(c.files);
        const errLines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('warning: '));
        const problems = [
          r.code !== 1 && `exit status ${r.code}`,
          errLines.length !== 1 && `${errLines.length} error lines`,
          !c.message.test(errLines[0] ?? '') && `message does not match ${c.message}`,
          at && !(errLines[0] ?? '').startsWith(`error: ${at}:`) && `not at ${at}`,
          /^\s+at /m.test(r.stderr) && 'stack trace',
          r.stdout !== '' && 'output on stdout',
        ].filter(Boolean);
        if (problems.length) failures.push(`${c.name}: ${problems.join(', ')}\n    got: ${r.stderr.trim()}`);
      } finally {
        removeProject(dir);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  assert.deepEqual(failures, []);
});

test('unknown keys are warnings with file, line and a suggestion; the run goes on', async () => {
  const dir = makeProject(withTask(`${TASK}kil-timeout: 5m\nfrobnicate: yes\n`, { 'spread.yaml': project({ suite: '        prepare-eachh: x\n' }) }));
  try {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'lxd:ubuntu-16.04:tests/a\n');
    assert.match(r.stderr, /^warning: tests\/a\/task\.yaml:3:1: unknown key "kil-timeout" \(did you mean "kill-timeout"\?\)$/m);
    assert.match(r.stderr, /^warning: tests\/a\/task\.yaml:4:1: unknown key "frobnicate" \(it is ignored\)$/m);
    assert.match(r.stderr, /^warning: spread\.yaml:10:9: unknown key "prepare-eachh" in suites\.tests\/ \(did you mean "prepare-each"\?\)$/m);
  } finally {
    removeProject(dir);
  }
});

test('-strict makes unknown keys one-line errors', async () => {
  const dir = makeProject(withTask(`${TASK}kil-timeout: 5m\n`));
  try {
    const r = await runSpread(['-strict', '-list'], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: tests/a/task.yaml:3:1: unknown key "kil-timeout" (did you mean "kill-timeout"?)\n');
  } finally {
    removeProject(dir);
  }
});

test('a dangling symlink in a suite is skipped with a warning (the original panics)', async () => {
  const dir = makeProject(withTask(TASK, { 'tests/gone': { symlink: '/nonexistent/target' } }));
  try {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'lxd:ubuntu-16.04:tests/a\n');
    assert.match(r.stderr, /^warning: tests\/gone: skipping gone: dangling symlink$/m);
  } finally {
    removeProject(dir);
  }
});
