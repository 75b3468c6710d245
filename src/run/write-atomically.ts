/**
 * Writing a whole file so readers never see half of it: the text goes to a
 * temporary file of our own (unique per process and call, so two runs
 * writing the same file never share one) in the same directory, which is
 * then renamed over the target. Used by the history file and the reports.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function writeAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
