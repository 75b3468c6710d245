/**
 * The HTML report of a real run, opened in headless Chromium: three sshd
 * machines serving two systems, a task that fails, a task that fails every
 * other run (so history calls it flaky after two runs), suite and project
 * scripts. The page is checked against what the run's log says: lanes,
 * bars, totals, filters, failures and their output, links; it must log no
 * error and fetch nothing. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { artifactPath, chromiumSkip, launchChromium } from '../helpers/chromium.js';
import type { Browser } from '../helpers/chromium.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip() || chromiumSkip();
const PASS = 'report-pw';
let targets: SshdTarget[] = [];
let pool: AdhocPool;
let browser: Browser;
let dir: string;
let state: string;
let log: string;
let report: string;
let json: { totals: Record<string, number>; jobs: { name: string; status: string; durationMs: number; machine: string | null }[] };

const PROJECT = (stateDir: string) => ({
  'spread.yaml': `project: report-demo
path: /home/report
environment:
    STATE: ${stateDir}
prepare: sleep 0.1
backends:
${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 2\n- debian-12:\n    workers: 1')}suites:
    tests/:
        summary: tests
        prepare: sleep 0.2
        prepare-each: sleep 0.1
        restore-each: sleep 0.1
        debug-each: echo "debug info for $SPREAD_JOB"
`,
  ...Object.fromEntries(['ok1', 'ok2', 'ok3'].map((t) => [`tests/${t}/task.yaml`, 'summary: passes\nexecute: sleep 0.3\n'])),
  'tests/broken/task.yaml': 'summary: always fails\nartifacts: [log.txt]\nexecute: |\n    echo "written before failing" > log.txt\n    echo "boom on $SPREAD_SYSTEM"\n    exit 1\n',
  'tests/flaky/task.yaml': 'summary: fails every other run\nexecute: |\n    echo x >> "$STATE/flaky-$SPREAD_SYSTEM"\n    n=$(wc -l < "$STATE/flaky-$SPREAD_SYSTEM")\n    if [ $((n % 2)) = 0 ]; then echo "flaky failure $n"; exit 1; fi\n',
});

before(async () => {
  if (skip) return;
  targets = await Promise.all(['127.0.0.31', '127.0.0.32', '127.0.0.33'].map((host) => startSshd({ host, rootPassword: PASS })));
  pool = adhocPool(targets);
  state = mkdtempSync('/var/tmp/spread-report-state-');
  dir = makeProject(PROJECT(state));
  // The first run gives history: every job's time, the flaky task's pass.
  const first = await runSpread([`-pass=${PASS}`, '-seed=7'], dir, pool.env);
  assert.equal(first.code, 1, first.stdout);
  await Promise.all(targets.map((t) => t.run('rm -rf /home/report')));
  report = join(dir, 'out', 'report.html');
  const second = await runSpread([`-pass=${PASS}`, '-seed=8', `-html=${report}`, `-json=${join(dir, 'out.json')}`, `-artifacts=${join(dir, 'artifacts')}`], dir, pool.env);
  assert.equal(second.code, 1, second.stdout);
  log = stripTime(second.stdout);
  json = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as typeof json;
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await Promise.all(targets.map((t) => t.stop()));
  pool?.remove();
  if (dir) removeProject(dir);
  if (state) rmSync(state, { recursive: true, force: true });
});

interface Opened {
  readonly page: Page;
  readonly errors: string[];
  readonly requests: string[];
}

async function open(): Promise<Opened> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${report}`);
  await page.waitForFunction(() => 'spreadReport' in window);
  return { page, errors, requests };
}

/** Which machine ran each job, from the JSON report (the log names adhoc machines by system, as the original does). */
const executed = (): Map<string, string> =>
  new Map(json.jobs.filter((j) => j.machine !== null).map((j) => [j.name, j.machine!]));

test('the timeline has a lane per machine and a bar per job run, split into prepare, execute and restore', { skip }, async () => {
  const { page, errors, requests } = await open();
  try {
    const ran = executed();
    assert.equal(ran.size, 10);
    const lanes = await page.evaluate(() => (window as any).spreadReport.timeline.lanes() as { name: string; system: string; idle: number }[]);
    assert.deepEqual(lanes.map((l) => l.name).sort(), [...new Set(ran.values())].sort());
    for (const lane of lanes) {
      const system = [...ran].find(([, m]) => m === lane.name)![0].split(':').slice(0, 2).join(':');
      assert.equal(lane.system, system);
      assert.ok(lane.idle >= 0 && lane.idle < 1);
    }
    const bars = await page.evaluate(() => (window as any).spreadReport.timeline.bars() as { job: string; lane: string; status: string; x: number; y: number; width: number; height: number; prepare: number; execute: number; restore: number }[]);
    assert.equal(bars.length, 10, 'one bar per run');
    const failed = new Set(json.jobs.filter((j) => j.status === 'failed').map((j) => j.name));
    assert.equal(failed.size, 4);
    for (const bar of bars) {
      assert.equal(bar.lane, ran.get(bar.job), `${bar.job} is drawn on the machine that ran it`);
      assert.equal(bar.status, failed.has(bar.job) ? 'failed' : 'passed', bar.job);
      assert.ok(bar.prepare > 0 && bar.execute > 0 && bar.restore > 0, `${bar.job} shows its three parts`);
    }
    // Bars of a lane follow the log's order.
    const order = [...log.matchAll(/^Executing (\S+) \(/gm)].map((m) => m[1]!);
    for (const lane of lanes) {
      const inLog = order.filter((job) => ran.get(job) === lane.name);
      assert.deepEqual(bars.filter((b) => b.lane === lane.name).sort((a, b) => a.x - b.x).map((b) => b.job), inLog);
    }
    // Hovering a bar tells what it is.
    const broken = bars.find((b) => b.job === 'adhoc:debian-12:tests/broken')!;
    await page.mouse.move(broken.x + broken.prepare + broken.execute / 2, broken.y + broken.height / 2);
    const tip = page.locator('.tl-tip');
    await tip.waitFor({ state: 'visible' });
    assert.match(await tip.innerText(), /adhoc:debian-12:tests\/broken\nexecute failed on 127\.0\.0\.\d+:\d+\nstarted .*, took [\d.]+m?s\nprepare [\d.]+m?s · execute [\d.]+m?s · restore [\d.]+m?s/);
    await page.screenshot({ path: artifactPath('report-timeline.png'), fullPage: false });
    // Clicking it selects the job.
    await page.mouse.click(broken.x + broken.prepare + broken.execute / 2, broken.y + broken.height / 2);
    assert.match(await page.locator('#job-detail').innerText(), /^failed adhoc:debian-12:tests\/broken\n1 run, last on 127\.0\.0\.\d+:\d+; [\d.]+m?s\nFailed executing: its failure\nartifacts$/);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [`file://${report}`], 'the page fetches nothing');
  } finally {
    await page.close();
  }
});

test('the header and the job table agree with the run; filters and sorting work', { skip }, async () => {
  const { page, errors } = await open();
  try {
    for (const status of ['passed', 'failed', 'error', 'skipped']) {
      assert.equal(await page.locator(`[data-total=${status}]`).innerText(), `${json.totals[status]} ${status}`);
    }
    assert.equal(await page.locator('[data-summary=task-error]').innerText(), '4 failed tasks');
    assert.match(await page.locator('header').innerText(), /3 machines: adhoc:debian-12 × 1, adhoc:ubuntu-16\.04 × 2/);
    const count = () => page.evaluate(() => (window as any).spreadReport.table.count() as { shown: number; total: number });
    assert.deepEqual(await count(), { shown: 10, total: 10 });
    assert.equal(await page.locator('#jobs .count').innerText(), '10 of 10 jobs');
    await page.selectOption('#jobs select[data-filter=status]', 'failed');
    assert.deepEqual(await count(), { shown: 4, total: 10 });
    assert.deepEqual((await page.locator('#jobs .vt-row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset['job']))).sort(), [...json.jobs.filter((j) => j.status === 'failed').map((j) => j.name)].sort());
    await page.selectOption('#jobs select[data-filter=system]', 'debian-12');
    assert.deepEqual(await count(), { shown: 2, total: 10 });
    await page.selectOption('#jobs select[data-filter=status]', '');
    assert.deepEqual(await count(), { shown: 5, total: 10 });
    await page.fill('#jobs input[data-filter=text]', 'tests/ok');
    assert.deepEqual(await count(), { shown: 3, total: 10 });
    await page.selectOption('#jobs select[data-filter=system]', '');
    await page.fill('#jobs input[data-filter=text]', '');
    await page.selectOption('#jobs select[data-filter=status]', 'flaky');
    assert.deepEqual((await page.locator('#jobs .vt-row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset['job']))).sort(), ['adhoc:debian-12:tests/flaky', 'adhoc:ubuntu-16.04:tests/flaky']);
    await page.selectOption('#jobs select[data-filter=status]', '');
    await page.click('#jobs .vt-sort[data-column=duration]');
    const duration = new Map(json.jobs.map((j) => [j.name, j.durationMs]));
    const longest = Math.max(...duration.values());
    const sorted = await page.locator('#jobs .vt-row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset['job']!));
    assert.equal(duration.get(sorted[0]!), longest, 'longest first');
    assert.deepEqual(sorted.map((n) => duration.get(n)), [...duration.values()].sort((a, b) => b - a));
    const ok1 = await page.locator('#jobs .vt-row[data-job="adhoc:debian-12:tests/ok1"]').innerText();
    assert.match(ok1, /\n[\d.]+m?s\n[+-]?\d+%\n1$/, 'a job that passed before shows its change against the previous run');
    // Flaky and slowest jobs.
    assert.deepEqual((await page.locator('#flaky tr[data-job]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset['job']))).sort(), ['adhoc:debian-12:tests/flaky', 'adhoc:ubuntu-16.04:tests/flaky']);
    assert.equal(await page.locator('#flaky tr[data-job] .strip i').evaluateAll((i) => i.map((x) => x.className).join(' ')), 'passed failed passed failed');
    assert.equal(duration.get((await page.locator('#slowest tr[data-job]').first().getAttribute('data-job'))!), longest);
    await page.screenshot({ path: artifactPath('report-full.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('failures: collapsed with their error line, expanded to output and debug output, searchable, with artifact links', { skip }, async () => {
  const { page, errors } = await open();
  try {
    const logged = (log.match(/^Error executing /gm) ?? []).length;
    assert.equal(logged, 4);
    assert.equal(await page.locator('#failures details.failure').count(), logged);
    assert.equal(await page.locator('#failures .count').innerText(), `${logged} failures`);
    const broken = page.locator('#failures details.failure', { hasText: 'adhoc:ubuntu-16.04:tests/broken' });
    assert.match(await broken.locator('summary').innerText(), /executing\s+adhoc:ubuntu-16\.04:tests\/broken on 127\.0\.0\.\d+:\d+ boom on ubuntu-16\.04/);
    assert.equal(await broken.locator('pre.output').count(), 0, 'output is only added when opened');
    await broken.locator('summary').click();
    assert.match(await broken.locator('pre.output').first().innerText(), /\+ echo 'boom on ubuntu-16\.04'\nboom on ubuntu-16\.04\n\+ exit 1/);
    assert.match(await broken.locator('pre.debug').innerText(), /debug info for adhoc:ubuntu-16\.04:tests\/broken/);
    const href = await broken.locator('a', { hasText: 'artifacts' }).getAttribute('href');
    const target = resolve(dirname(report), decodeURIComponent(href!));
    assert.equal(readFileSync(join(target, 'log.txt'), 'utf8'), 'written before failing\n', 'the artifacts link leads to the fetched files');
    await page.fill('#failures input.failure-search', 'flaky failure');
    await page.waitForFunction(() => (window as any).spreadReport.failures.count().matching === 2);
    assert.equal(await page.locator('#failures details.failure[open]').count(), 2, 'matches are opened');
    assert.equal(await page.locator('#failures details.failure mark').count(), 4, 'and highlighted (the traced echo and its output)');
    assert.equal(await page.locator('#failures .count').innerText(), '2 of 4 failures match');
    await page.screenshot({ path: artifactPath('report-failures.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('the report is one file: style, data and script inline, nothing to fetch', { skip }, () => {
  const html = readFileSync(report, 'utf8');
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i);
  assert.doesNotMatch(html, /https?:\/\//);
  assert.ok(statSync(report).size < 200_000, `${statSync(report).size} bytes`);
  assert.ok(existsSync(fileURLToPath(new URL(`file://${report}`))));
});
