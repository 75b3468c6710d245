/**
 * The HTML report at snapd's scale (60,000 jobs, made up): the page stays
 * usable: only the table rows in view exist, scrolling and filtering work
 * over all of them, failures come a page at a time, the timeline has every
 * run, and nothing logs an error. Also the data's round trip through the
 * compressed form large reports use.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { collectReport } from '../../src/report/html/collect.js';
import type { ReportData } from '../../src/report/html/model.js';
import { readReportData, renderHtml } from '../../src/report/html/render.js';
import { artifactPath, chromiumSkip, launchChromium } from '../helpers/chromium.js';
import type { Browser } from '../helpers/chromium.js';
import { syntheticRun } from '../helpers/synthetic-run.js';

const skip = chromiumSkip();
const JOBS = 60_000;
let dir: string;
let file: string;
let data: ReportData;
let html: string;
let browser: Browser | undefined;

before(async () => {
  const run = syntheticRun(JOBS, 64);
  run.play([collectReport((d) => void (data = d), { past: run.past })]);
  html = renderHtml(data);
  dir = mkdtempSync(join(tmpdir(), 'spread-html-scale-'));
  file = join(dir, 'report.html');
  writeFileSync(file, html);
  if (!skip) browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('large reports carry their data compressed, and it reads back the same', () => {
  assert.match(html, /data-encoding="gzip\+base64"/);
  assert.deepEqual(readReportData(html), JSON.parse(JSON.stringify(data)));
  assert.equal(data.jobs.length, JOBS);
});

test('60,000 jobs: the table renders only what is in view, and scrolls and filters over everything', { skip }, async () => {
  const page = await browser!.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  try {
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => 'spreadReport' in window, undefined, { timeout: 60_000 });
    await page.screenshot({ path: artifactPath('report-60000-jobs.png') });
    assert.equal(await page.locator('#jobs .count').innerText(), `${JOBS} of ${JOBS} jobs`);
    const rows = page.locator('#jobs .vt-row');
    assert.ok((await rows.count()) < 60, `${await rows.count()} rows in the document`);
    assert.equal(await rows.first().getAttribute('data-job'), 'google:fedora-41-64:tests/suite000/task00:variant');
    await page.locator('#jobs .vt-body').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await page.waitForFunction(() => document.querySelector('#jobs .vt-row:last-child')?.getAttribute('data-job') === 'google:ubuntu-24.04-64:tests/suite599/task49');
    assert.ok((await rows.count()) < 60);
    await page.fill('#jobs input[data-filter=text]', 'suite123/task4');
    assert.equal(await page.locator('#jobs .count').innerText(), `20 of ${JOBS} jobs`);
    const failures = data.failures.length;
    assert.ok(failures > 1000);
    assert.equal(await page.locator('#failures details.failure').count(), 50, 'failures come a page at a time');
    await page.click('#failures button.more');
    assert.equal(await page.locator('#failures details.failure').count(), 100);
    const drawn = await page.evaluate(() => {
      const t = (window as any).spreadReport.timeline;
      return { lanes: t.lanes().length, bars: t.bars().length };
    });
    assert.deepEqual(drawn, { lanes: 64, bars: JOBS });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
