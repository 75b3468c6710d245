/** The report page's stylesheet, inlined into the page. */
export const STYLE = `
:root { --passed: #2f9e50; --failed: #d1383d; --error: #b45309; --skipped: #9a9a9a; --line: #dde1e7; --muted: #667; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; }
body { margin: 0; background: #fff; }
header, main > section { padding: 12px 24px; }
header { background: #f5f7fa; border-bottom: 1px solid var(--line); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 8px 0; }
.meta { color: var(--muted); margin: 2px 0; }
.totals { margin: 8px 0; display: flex; flex-wrap: wrap; gap: 6px; }
.badge { display: inline-block; border-radius: 3px; padding: 0 6px; font-size: 12px; background: #e8ebf0; color: #333; }
.badge.big { font-size: 14px; padding: 2px 10px; }
.badge.passed { background: var(--passed); color: #fff; }
.badge.failed { background: var(--failed); color: #fff; }
.badge.error { background: var(--error); color: #fff; }
.badge.skipped { background: var(--skipped); color: #fff; }
.badge.matched { background: #111; color: #fff; }
.badge.unmatched { background: #f0c36d; color: #222; }
.interrupted { color: var(--failed); }
.hunt { margin-top: 8px; padding: 8px 12px; border-left: 4px solid var(--skipped); background: #fff; }
.hunt.matched { border-color: var(--failed); }
code { background: #eef0f4; padding: 1px 4px; border-radius: 3px; }
.none { color: var(--muted); }
button { font: inherit; cursor: pointer; }
.tl-controls { display: flex; gap: 6px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
.legend { color: var(--muted); font-size: 12px; margin-left: 12px; }
.swatch { margin-right: 10px; } .swatch i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
#timeline { position: relative; }
.tl-body { display: grid; grid-template-columns: 230px 1fr; max-height: 70vh; overflow-y: auto; border: 1px solid var(--line); }
.tl-labels { border-right: 1px solid var(--line); font-size: 12px; }
.tl-axis-spacer { height: 22px; line-height: 22px; padding-left: 6px; color: var(--muted); }
.tl-lane { height: 24px; line-height: 24px; padding: 0 6px; display: flex; justify-content: space-between; overflow: hidden; white-space: nowrap; }
.tl-lane:nth-child(odd) { background: #f4f5f7; }
.tl-idle { color: var(--muted); }
.tl-wrap { min-width: 0; }
.tl-canvas { display: block; width: 100%; }
.tl-tip { position: absolute; z-index: 5; max-width: 320px; background: #1d2330; color: #fff; padding: 6px 8px; border-radius: 4px; font-size: 12px; pointer-events: none; }
.tl-parts { color: #cfd6e4; }
.tl-drag { position: absolute; background: rgba(63, 111, 176, .15); border: 1px solid #3f6fb0; pointer-events: none; }
#job-detail .detail { margin-top: 8px; padding: 6px 10px; border: 1px solid var(--line); border-radius: 4px; }
.filters { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; margin-bottom: 6px; }
.filters input[type=search] { min-width: 260px; padding: 3px 6px; }
.count { color: var(--muted); margin-left: 6px; }
.vt { border: 1px solid var(--line); }
.vt-grid { display: grid; grid-template-columns: 80px minmax(200px, 1fr) 180px 90px 110px 110px; }
.vt-head { background: #f5f7fa; border-bottom: 1px solid var(--line); }
.vt-sort { text-align: left; border: 0; background: none; padding: 4px 6px; font-weight: 600; }
.vt-sort[data-sorted=asc]::after { content: " ▲"; } .vt-sort[data-sorted=desc]::after { content: " ▼"; }
.vt-body { max-height: 480px; overflow-y: auto; position: relative; }
.vt-spacer { position: relative; }
.vt-row { height: 24px; line-height: 24px; border-bottom: 1px solid #f0f1f4; }
.vt-cell { padding: 0 6px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.slower { color: var(--failed); } .faster { color: var(--passed); }
.job-link { color: inherit; text-decoration: none; } .job-link:hover { text-decoration: underline; }
.failure-list { max-height: 70vh; overflow-y: auto; }
.failure { border: 1px solid var(--line); border-radius: 4px; margin: 4px 0; }
.failure > summary { padding: 4px 8px; cursor: pointer; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.failure .machine, .failure .headline { color: var(--muted); }
.failure .links, .failure .label { padding: 2px 8px; font-size: 12px; color: var(--muted); }
pre.output { margin: 0 8px 8px; padding: 6px 8px; background: #1d2330; color: #e8ebf0; overflow: auto; max-height: 480px; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
pre.output mark { background: #f0c36d; color: #000; }
.more { margin: 6px 0; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
@media (max-width: 1000px) { .side { grid-template-columns: 1fr; } }
table.small { border-collapse: collapse; width: 100%; font-size: 13px; }
table.small th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); }
table.small td { padding: 2px 14px 2px 0; border-bottom: 1px solid #f0f1f4; }
.strip i { display: inline-block; width: 9px; height: 14px; margin-right: 2px; }
.strip i.passed { background: var(--passed); } .strip i.failed { background: var(--failed); }
.bar-cell { white-space: nowrap; } .bar-cell .bar { display: inline-block; height: 10px; margin-right: 6px; vertical-align: middle; }
.bar.passed { background: var(--passed); } .bar.failed { background: var(--failed); } .bar.error { background: var(--error); } .bar.skipped { background: var(--skipped); }
`;
