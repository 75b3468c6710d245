/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core,
 * for tests of the HTML report: launched with everything that would reach
 * the network off (this machine has none) and a fresh profile each time.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { REPO_ROOT } from './fixture.js';

export const CHROMIUM = process.env['SPREAD_TEST_CHROMIUM'] ?? '/usr/bin/chromium';

/** For `test(name, { skip: chromiumSkip() }, ...)`: a reason off CI, never on CI. */
export const chromiumSkip = (): string | false =>
  !existsSync(CHROMIUM) && process.env['CI'] !== 'true' ? `${CHROMIUM} is not installed` : false;

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(viewport = { width: 1400, height: 1000 }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'spread-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Where tests leave screenshots (git ignores it). */
export function artifactPath(name: string): string {
  const dir = join(REPO_ROOT, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
