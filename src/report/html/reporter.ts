/**
 * `-html=FILE`: the HTML report reporter, written when the run ends. Links
 * (artifacts, saved failures, the hunt's tarball) are relative to the
 * report's directory, so the report and what it links to can move together.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { Reporter } from '../../events.js';
import { collectReport } from './collect.js';
import type { PastJob } from './collect.js';
import { renderHtml } from './render.js';

export interface HtmlReportOptions {
  readonly file: string;
  readonly write: (html: string) => void;
  /** What history knew of each job before the run. */
  readonly past?: (jobName: string) => PastJob | undefined;
}

export function htmlReporter(o: HtmlReportOptions): Reporter {
  const base = dirname(resolve(o.file));
  const link = (path: string): string => {
    const rel = relative(base, resolve(path));
    // Percent-encode what a URL path cannot hold as is (`:` would read as a scheme, `#`, `?`, `%`, spaces).
    return isAbsolute(rel) ? `file://${encodePath(rel)}` : encodePath(rel);
  };
  return collectReport((data) => o.write(renderHtml(data)), { relative: link, ...(o.past ? { past: o.past } : {}) });
}

const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');
