/**
 * -junit and -json through the real command, on one run that provokes every
 * failure category: the console summary, the JUnit report and the JSON
 * report must tell the same story about every job. The JUnit report is
 * checked three ways: against junit-10.xsd's rules by a real validator
 * (xmllint), by a maintained JUnit parser (junit2json), and by the rules
 * asserted here; the JSON report against schemas/report.schema.json.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse as parseJunit } from 'junit2json';
import type { TestCase, TestSuite, TestSuites } from 'junit2json';
import { makeProject, REPO_ROOT, removeProject, runSpread, stripTime } from '../helpers/fixture.js';

const failIf = (what: string) => `'[ "$FAIL" != ${what} ]'`;
const system = (name: string, fail: string) => `            - ${name}:\n                environment:\n                    FAIL: ${fail}\n`;
const XSD = join(REPO_ROOT, 'test/report/junit-10.xsd');
const hasXmllint = (() => {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const project = (noisePort: number) => ({
  'spread.yaml': `project: reports
path: /reports
prepare: ${failIf('project-prepare')}
restore: ${failIf('project-restore')}
backends:
    local:
        prepare: ${failIf('backend-prepare')}
        restore: ${failIf('backend-restore')}
        systems:
${system('a-1', 'task')}${system('b-1', 'suite-prepare')}${system('c-1', 'suite-restore')}${system('d-1', 'backend-prepare')}${system('e-1', 'backend-restore')}${system('f-1', 'project-prepare')}${system('g-1', 'project-restore')}
    broken:
        type: adhoc
        allocate: FATAL "no capacity left"
        discard: "true"
        systems: [x-1]
    noise:
        type: adhoc
        allocate: ADDRESS 127.0.0.1:${noisePort}
        discard: "true"
        systems: [y-1]
suites:
    tests/:
        summary: Tests
        prepare: ${failIf('suite-prepare')}
        restore: ${failIf('suite-restore')}
`,
  'tests/t-pass/task.yaml': 'summary: passes everywhere\npriority: 9\nexecute: echo all good\n',
  'tests/t-fail/task.yaml': 'summary: execute fails\npriority: 5\nsystems: [a-1]\nexecute: |\n    echo "about to fail"\n    exit 3\n',
  'tests/t-error/task.yaml': 'summary: ERROR helper\npriority: 4\nsystems: [a-1]\nexecute: ERROR "the disk is full"\n',
  'tests/t-color/task.yaml': `summary: nasty output
priority: 3
systems: [a-1]
execute: |
    printf '\\033[31mred\\033[0m <tag> & "quote" ]]> bell\\a end\\n'
    false
`,
  'tests/t-prep/task.yaml': 'summary: prepare fails\npriority: 2\nsystems: [a-1]\nprepare: "false"\nexecute: "true"\n',
  'tests/t-rest/task.yaml': 'summary: restore fails\npriority: 1\nsystems: [a-1]\nexecute: "true"\nrestore: "false"\n',
});

type Status = 'passed' | 'failed' | 'error' | 'skipped';
interface JsonJob { name: string; status: Status; reason: string | null; outcomes: string[]; failure: { level: string; verb: string; reason: string; output: string } | null }
interface JsonReport { version: number; totals: Record<string, number>; jobs: JsonJob[]; levels: { entry: string; outcome: string; verb: string; level: string; reason: string; output: string }[] }

/** A server that is not SSH: it answers with garbage and hangs up. */
let noise: net.Server;
let dir: string;
let run: { code: number; stdout: string; stderr: string };

before(async () => {
  noise = net.createServer((s) => {
    s.on('error', () => {});
    s.end('HTTP/1.0 400 Bad Request\r\n\r\n');
  });
  await new Promise<void>((resolve) => noise.listen(0, '127.0.0.1', resolve));
  dir = makeProject(project((noise.address() as net.AddressInfo).port));
  run = await runSpread(['-junit=reports/out.xml', '-json=reports/deep/out.json', '-seed=5'], dir, { SPREAD_DIAL_TIMEOUT: '1s' });
});
after(() => {
  noise.close();
  removeProject(dir);
});

const summaryOf = (stdout: string) => {
  const text = stripTime(stdout.slice(stdout.indexOf('Successful tasks:')));
  const categories = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const entry = /^ {4}- (.*)$/.exec(line);
    if (entry && current) current.push(entry[1]!);
    const title = /^([A-Z][a-z ]+): \d+$/.exec(line);
    if (title) categories.set(title[1]!, (current = []));
  }
  return { successful: Number(/Successful tasks: (\d+)/.exec(text)![1]), aborted: Number(/Aborted tasks: (\d+)/.exec(text)![1]), categories };
};

const jsonReport = (): JsonReport => JSON.parse(readFileSync(join(dir, 'reports/deep/out.json'), 'utf8')) as JsonReport;

test('every failure category: console summary, JUnit and JSON agree on every job', async () => {
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.equal(run.stderr, 'error: unsuccessful run\n');
  const report = jsonReport();
  const status = new Map(report.jobs.map((j) => [j.name, j.status]));
  assert.deepEqual(Object.fromEntries(status), {
    'broken:x-1:tests/t-pass': 'error',
    'local:a-1:tests/t-color': 'failed',
    'local:a-1:tests/t-error': 'failed',
    'local:a-1:tests/t-fail': 'failed',
    'local:a-1:tests/t-pass': 'passed',
    'local:a-1:tests/t-prep': 'failed',
    'local:a-1:tests/t-rest': 'failed',
    'local:b-1:tests/t-pass': 'error',
    'local:c-1:tests/t-pass': 'passed',
    'local:d-1:tests/t-pass': 'error',
    'local:e-1:tests/t-pass': 'passed',
    'local:f-1:tests/t-pass': 'error',
    'local:g-1:tests/t-pass': 'passed',
    'noise:y-1:tests/t-pass': 'error',
  });
  assert.deepEqual(report.totals, { jobs: 14, passed: 4, failed: 5, error: 5, skipped: 0 });

  // The console: a job listed under a task category failed; the others are counted.
  const console = summaryOf(run.stdout);
  const consoleFailed = [...console.categories].filter(([title]) => title.startsWith('Failed task')).flatMap(([, names]) => names);
  assert.deepEqual([...consoleFailed].sort(), report.jobs.filter((j) => j.status === 'failed').map((j) => j.name).sort());
  assert.equal(console.successful, report.totals['passed'], 'a task whose restore failed is not successful');
  assert.equal(console.aborted, report.totals['error']! + report.totals['skipped']!);
  const consoleLevels = [...console.categories].filter(([title]) => !title.startsWith('Failed task')).flatMap(([title, names]) => names.map((n) => `${title}: ${n}`));
  const title = (outcome: string) => `Failed ${outcome.split('-')[0]} ${outcome.split('-')[1]}`;
  assert.deepEqual(consoleLevels.sort(), report.levels.map((l) => `${title(l.outcome)}: ${l.entry}`).sort());
  assert.equal(consoleLevels.length, 6);

  // JUnit: one testcase per job with the same status, plus one error per failed level restore.
  const xml = readFileSync(join(dir, 'reports/out.xml'), 'utf8');
  const parsed = (await parseJunit(xml)) as TestSuites;
  const cases = (parsed.testsuite ?? []).flatMap((s: TestSuite) => (s.testcase ?? []).map((c: TestCase) => ({ suite: s, c })));
  const junitStatus = (c: TestCase): Status => (c.failure ? 'failed' : c.error ? 'error' : c.skipped ? 'skipped' : 'passed');
  const jobCases = cases.filter(({ c }) => !c.name!.startsWith('['));
  assert.equal(jobCases.length, report.jobs.length);
  for (const { suite, c } of jobCases) {
    const name = `${suite.name}${c.name}`;
    assert.equal(junitStatus(c), status.get(name), name);
    assert.equal(c.classname, `${suite.name!.split(':').slice(0, 2).join(':')}.${suite.name!.split(':')[2]}`, 'classname is backend:system.suite/');
  }
  const levelCases = cases.filter(({ c }) => c.name!.startsWith('['));
  assert.deepEqual(levelCases.map(({ suite, c }) => `${suite.name} ${c.name} ${junitStatus(c)}`).sort(), [
    'local:c-1:tests/ [suite restore] error',
    'local:e-1:tests/ [backend restore] error',
    'local:g-1:tests/ [project restore] error',
  ]);
  assert.equal(parsed.tests, cases.length);
  assert.equal(parsed.failures, 5);
  assert.equal(parsed.errors, 5 + 3);
});

test('JUnit: reasons, output, and the rules of junit-10.xsd', async () => {
  const xml = readFileSync(join(dir, 'reports/out.xml'), 'utf8');
  const parsed = (await parseJunit(xml)) as TestSuites;
  const byName = new Map((parsed.testsuite ?? []).flatMap((s) => (s.testcase ?? []).map((c) => [`${s.name}${c.name}`, c] as const)));
  const failure = (name: string) => byName.get(name)!.failure![0]!;
  const error = (name: string) => byName.get(name)!.error![0]!;
  assert.match(failure('local:a-1:tests/t-fail').message!, /^Error executing local:a-1:tests\/t-fail \(a-1-\d+-\d+\) : exit status 3$/);
  assert.equal(failure('local:a-1:tests/t-fail').type, 'task-error');
  assert.match(failure('local:a-1:tests/t-fail').inner!, /about to fail/);
  assert.match(failure('local:a-1:tests/t-error').message!, / : the disk is full$/);
  assert.equal(failure('local:a-1:tests/t-prep').type, 'task-prepare-error');
  assert.equal(failure('local:a-1:tests/t-rest').type, 'task-restore-error');
  assert.match(error('local:b-1:tests/t-pass').message!, /^not run: preparing local:b-1:tests\/ failed on b-1-\d+-\d+: exit status 1$/);
  assert.equal(error('local:b-1:tests/t-pass').type, 'suite-prepare-error');
  assert.match(error('broken:x-1:tests/t-pass').message!, /^not run: cannot allocate broken:x-1: no capacity left$/);
  // Not SSH at all: refused at the first answer, without a minute of retries (SPREAD_DIAL_TIMEOUT is 1 s here anyway).
  assert.match(error('noise:y-1:tests/t-pass').message!, /^not run: cannot connect to noise:y-1: cannot connect to 127\.0\.0\.1:\d+: not an SSH server \(it said "HTTP\/1\.0 400 Bad Request"\)$/);
  assert.match(error('local:c-1:tests/[suite restore]').message!, /^Error restoring local:c-1:tests\/ \(c-1-\d+-\d+\) : exit status 1$/);
  const passed = byName.get('local:a-1:tests/t-pass')!;
  assert.match(passed['system-out']![0]!, /^--- executing local:a-1:tests\/t-pass \(a-1-\d+-\d+\): ok after [\d.]+s\n[^]*all good\n$/);

  // Terminal colours go whole, not only their escape character; XML specials survive; ]]> is split.
  const color = failure('local:a-1:tests/t-color').inner!;
  assert.match(color, /red <tag> & "quote" ]]> bell end/);
  assert.match(xml, /\nred <tag> & "quote" ]]]]><!\[CDATA\[> bell end\n/, 'the colour sequences are gone, not only their escape character');
  assert.doesNotMatch(xml, /[\u0007\u001b]/);
  assert.match(xml, /]]]]><!\[CDATA\[>/);

  // What junit-10.xsd requires, asserted in our own words.
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="spread" tests="17" failures="5" errors="8" time="\d+\.\d{3}">\n/);
  const root = /<testsuites [^>]*>/.exec(xml)![0];
  assert.doesNotMatch(root, / skipped=| timestamp=/, 'testsuites allows only name, time, tests, failures, errors');
  for (const suite of xml.match(/<testsuite [^>]*>/g)!) {
    for (const required of ['name', 'tests', 'failures', 'errors']) assert.match(suite, new RegExp(` ${required}="`), `${suite} has ${required}`);
    assert.match(suite, / time="\d+\.\d{3}" timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" hostname="[^"]+"/);
  }
  for (const tc of xml.match(/<testcase [^>]*>/g)!) assert.match(tc, /^<testcase name="[^"]+" classname="[^".]+\.[^".]+" time="\d+\.\d{3}"\/?>$/, tc);
  assert.equal(xml.match(/<testsuite /g)!.length, xml.match(/<\/testsuite>/g)!.length);
});

test('JUnit: a real validator accepts the report against junit-10.xsd', { skip: !hasXmllint && process.env['CI'] !== 'true' ? 'xmllint (libxml2-utils) is not installed' : false }, () => {
  const out = execFileSync('xmllint', ['--noout', '--schema', XSD, join(dir, 'reports/out.xml')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(out, '');
  // And the validator does say no: a `skipped` attribute on <testsuites> is refused.
  const bad = join(dir, 'reports/bad.xml');
  execFileSync('sh', ['-c', `sed '2s/<testsuites /<testsuites skipped="1" /' "$1" > "$2"`, 'sh', join(dir, 'reports/out.xml'), bad]);
  assert.throws(() => execFileSync('xmllint', ['--noout', '--schema', XSD, bad], { stdio: 'pipe' }), /fails to validate|not allowed/);
});

test('JSON: valid against schemas/report.schema.json, every field documented, output stored once', () => {
  const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/report.schema.json'), 'utf8')) as object;
  const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
  const report = jsonReport();
  assert.ok(validate(report), JSON.stringify(validate.errors));
  assert.equal(report.version, 2);
  assert.equal(validate({ ...report, jobs: [{ ...report.jobs[0], status: 'aborted' }] }), false, 'the schema does refuse');

  const undocumented: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    for (const [key, value] of Object.entries((n['properties'] ?? {}) as Record<string, unknown>)) {
      if (value !== true && typeof (value as { description?: unknown }).description !== 'string' && !(value as { $ref?: string }).$ref) undocumented.push(`${path}.${key}`);
      walk(value, `${path}.${key}`);
    }
    walk(n['items'], `${path}[]`);
    for (const [key, value] of Object.entries((n['definitions'] ?? {}) as Record<string, unknown>)) walk(value, `#${key}`);
  };
  walk(schema, '');
  assert.deepEqual(undocumented, []);
  const docs = readFileSync(join(REPO_ROOT, 'docs/reports.md'), 'utf8');
  for (const field of ['version', 'startedAt', 'endedAt', 'durationMs', 'hostname', 'seed', 'interrupted', 'totals', 'jobs', 'levels', 'status', 'reason', 'outcomes', 'machine', 'failure', 'entry', 'context', 'output']) {
    assert.match(docs, new RegExp('`' + field + '`'), `docs/reports.md describes ${field}`);
  }

  const failed = report.jobs.find((j) => j.name === 'local:a-1:tests/t-fail')!;
  assert.deepEqual(failed.outcomes, ['task-error']);
  assert.equal(failed.failure!.reason, 'exit status 3');
  assert.match(failed.reason!, /^Error executing local:a-1:tests\/t-fail \(.*\) : exit status 3$/);
  const text = readFileSync(join(dir, 'reports/deep/out.json'), 'utf8');
  assert.equal(text.split("+ echo 'about to fail'").length - 1, 1, 'the failure output is stored once');
  const rest = report.jobs.find((j) => j.name === 'local:a-1:tests/t-rest')!;
  assert.deepEqual(rest.outcomes, ['task-restore-error'], 'no task-done for a repeat whose restore failed');
  assert.equal(rest.failure!.verb, 'restoring');
  const prep = report.jobs.find((j) => j.name === 'local:a-1:tests/t-prep')!;
  assert.deepEqual(prep.outcomes, ['task-prepare-error'], 'counted once: failed, not also aborted');
  assert.equal(report.jobs.find((j) => j.name === 'local:c-1:tests/t-pass')!.failure, null);
  assert.deepEqual(report.levels.map((l) => `${l.outcome} ${l.entry}`).sort(), [
    'backend-prepare-error local:d-1:local', 'backend-restore-error local:e-1:local',
    'project-prepare-error local:f-1:project', 'project-restore-error local:g-1:project',
    'suite-prepare-error local:b-1:tests/', 'suite-restore-error local:c-1:tests/',
  ]);
  assert.ok(existsSync(join(dir, 'reports/deep')), 'parent directories were created');
});

test('-abend: the jobs its stop left are skipped with that reason, and the console counts them aborted', async () => {
  const abend = makeProject({
    'spread.yaml': 'project: abend\npath: /abend\nbackends:\n    local:\n        systems: [a-1]\nsuites:\n    tests/:\n        summary: tests\n',
    'tests/a/task.yaml': 'summary: fails first\npriority: 9\nexecute: "false"\n',
    'tests/b/task.yaml': 'summary: b\nexecute: "true"\n',
    'tests/c/task.yaml': 'summary: c\nexecute: "true"\n',
  });
  try {
    const r = await runSpread(['-abend', '-json=out.json'], abend);
    assert.equal(r.code, 1);
    assert.match(stripTime(r.stdout), /Successful tasks: 0\nAborted tasks: 2\nFailed tasks: 1\n/);
    const jobs = (JSON.parse(readFileSync(join(abend, 'out.json'), 'utf8')) as JsonReport).jobs;
    assert.deepEqual(jobs.map((j) => j.status), ['failed', 'skipped', 'skipped']);
    for (const j of jobs.slice(1)) assert.match(j.reason!, /^not run: -abend stopped the worker on a-1-\d+-1 after a failure$/);
  } finally {
    removeProject(abend);
  }
});
