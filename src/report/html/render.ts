/**
 * The HTML report (`-html=FILE`): one self-contained file, its style, data
 * and script inline, that fetches nothing, so it opens the same from a CI
 * artifact store or a local disk.
 *
 * The page script is written in TypeScript as small modules under page/,
 * compiled with the rest. There is no bundler in the build, so this file
 * joins their compiled JavaScript into one script: in dependency order,
 * their `import` lines dropped and `export` keywords removed (the modules
 * import only each other and share one scope; tsc writes each import on a
 * line of its own). Names must therefore be unique across the page modules;
 * a clash is a syntax error the browser tests would see.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ReportData } from './model.js';
import { STYLE } from './style.js';

/** The page modules, each after those it imports. */
const MODULES = ['../model.js', 'format.js', 'data.js', 'timeline.js', 'table.js', 'failures.js', 'main.js'];

let script: string | undefined;

/** The page script as the bundle of the command carries it (scripts/bundle.mjs defines it); absent in dist/src. */
declare const __SPREAD_REPORT_PAGE__: string | undefined;

/** The page script: the compiled modules joined into one. */
export function pageScript(): string {
  if (typeof __SPREAD_REPORT_PAGE__ === 'string') return __SPREAD_REPORT_PAGE__;
  script ??= MODULES.map((name) => {
    const js = readFileSync(new URL(`./page/${name}`, import.meta.url), 'utf8')
      .replace(/^\/\/\/ <reference [^\n]*\n/gm, '')
      .replace(/^import [^\n]*;\n/gm, '')
      .replace(/^export \{\s*\};?\n?/gm, '')
      .replace(/^export (?=(?:async function|function|const|let|class) )/gm, '')
      .replace(/^\/\/# sourceMappingURL=[^\n]*\n?/gm, '');
    const left = /^(?:import|export)\b.*$/m.exec(js);
    if (left) throw new Error(`cannot inline report page module ${name}: ${left[0]}`);
    return `// ${name}\n${js}`;
  }).join('\n');
  return script;
}

const escapeText = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Data past this size is embedded gzipped (then base64): a snapd-sized run's report shrinks about fivefold. */
export const COMPRESS_ABOVE = 1 << 20;

/** The data element: JSON as is, or gzipped and base64-encoded when large (the page inflates it with DecompressionStream). */
function dataElement(data: ReportData): string {
  const json = JSON.stringify(data);
  if (json.length <= COMPRESS_ABOVE) {
    // Inside <script>, "</script" or "<!--" would end or confuse the element: JSON can say "<" as \u003c.
    return `<script type="application/json" id="spread-data">${json.replace(/</g, '\\u003c')}</script>`;
  }
  return `<script type="application/octet-stream" id="spread-data" data-encoding="gzip+base64">${gzipSync(json, { level: 6 }).toString('base64')}</script>`;
}

/** The data of a report file (for tests and tools). */
export function readReportData(html: string): ReportData {
  const m = /<script type="application\/(json|octet-stream)" id="spread-data"( data-encoding="gzip\+base64")?>([^<]*)<\/script>/.exec(html);
  if (!m) throw new Error('no spread report data in this file');
  return JSON.parse(m[2] ? gunzipSync(Buffer.from(m[3]!, 'base64')).toString('utf8') : m[3]!) as ReportData;
}

export function renderHtml(data: ReportData): string {
  const js = pageScript().replace(/<\/script/gi, '<\\/script');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="spread">
<title>spread: ${escapeText(data.project)} ${escapeText(new Date(data.startedAt).toISOString())}</title>
<style>${STYLE}</style>
</head>
<body>
<header id="header"></header>
<main>
<section><h2>Timeline</h2><div id="timeline"></div><div id="job-detail"></div></section>
<section><h2>Failures</h2><div id="failures"></div></section>
<section class="side"><div><h2>Flaky jobs</h2><div id="flaky"></div></div><div><h2>Slowest jobs</h2><div id="slowest"></div></div></section>
<section><h2>Jobs</h2><div id="jobs"></div></section>
</main>
${dataElement(data)}
<script>
(() => {
${js}
})();
</script>
</body>
</html>
`;
}
