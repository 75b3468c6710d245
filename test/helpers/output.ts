/** Script output (bytes, bounded) in the forms tests compare. */
import { outputBytes, outputText, type Output } from '../../src/output.js';
import type { ExecResult } from '../../src/remote/session.js';

/** The output as text: valid UTF-8 as is, other bytes as `\xNN`. */
export const text = (o: Output): string => outputText(o);

/** The exact bytes shown for an output. */
export const bytes = (o: Output): Buffer => outputBytes(o);

/** An exec result with its output as text, for deepEqual. */
export const plain = (r: ExecResult): { exitCode: number; output: string; killed: boolean } =>
  ({ exitCode: r.exitCode, output: text(r.output), killed: r.killed });
