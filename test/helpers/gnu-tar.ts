/** Tests that compare with the real GNU tar skip without it, except on CI (where .ci/run has it). */
import { execFileSync } from 'node:child_process';

export const gnuTarSkip = (): string | false => {
  let ok = false;
  try {
    ok = execFileSync('tar', ['--version'], { encoding: 'utf8' }).includes('GNU tar');
  } catch { /* missing */ }
  return ok || process.env['CI'] === 'true' ? false : 'GNU tar is not installed';
};
