/**
 * The HTML report at 1,000 and 60,000 jobs (snapd has some 60,000): the
 * time to collect it from the event stream (the stream's own fan-out
 * included: at 60,000 jobs that is 600,000 events played back to back,
 * where a real run spreads them over hours) and to render the file, its
 * size, and in headless Chromium the first contentful paint (the page's
 * frame), the moment the page script has built the report (data inflated
 * and decoded, timeline, failures, tables) and the first paint after it.
 * Usage: npm run build && node dist/bench/html-report.js [jobs ...]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectReport } from '../src/report/html/collect.js';
import type { ReportData } from '../src/report/html/model.js';
import { renderHtml } from '../src/report/html/render.js';
import { launchChromium } from '../test/helpers/chromium.js';
import { syntheticRun } from '../test/helpers/synthetic-run.js';

const sizes = process.argv.slice(2).map(Number);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spread-bench-html-'));
  const browser = await launchChromium();
  try {
    for (const jobs of sizes.length ? sizes : [1000, 60_000]) {
      const run = syntheticRun(jobs, jobs > 10_000 ? 64 : 8);
      let data: ReportData | undefined;
      const reporter = collectReport((d) => void (data = d), { past: run.past });
      const started = performance.now();
      run.play([reporter]);
      const collectMs = performance.now() - started;
      const html = renderHtml(data!);
      const renderMs = performance.now() - started - collectMs;
      const file = join(dir, `report-${jobs}.html`);
      writeFileSync(file, html);
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${file}`);
      await page.waitForFunction(() => performance.getEntriesByName('spread-report-painted').length > 0);
      const at = await page.evaluate(() => {
        const mark = (name: string) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
        return { fcp: mark('first-contentful-paint'), drawn: mark('spread-report-drawn'), painted: mark('spread-report-painted') };
      });
      await page.close();
      if (errors.length) throw new Error(errors.join('\n'));
      console.log(`${String(jobs).padStart(6)} jobs: collected in ${collectMs.toFixed(0)} ms, rendered in ${renderMs.toFixed(0)} ms, ${(Buffer.byteLength(html) / 1e6).toFixed(2)} MB; `
        + `Chromium: first contentful paint ${at.fcp.toFixed(0)} ms, report drawn ${at.drawn.toFixed(0)} ms, first paint of the report ${at.painted.toFixed(0)} ms`);
    }
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
