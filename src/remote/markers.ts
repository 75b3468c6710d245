/**
 * Reading what a script reported back (spec §4.5, §5.5): the exit-213 marker
 * protocol, and the original's shaping of output into error messages.
 */
import type { Output } from '../output.js';
import { lastLine, stripPrefix, trimOutput } from '../output.js';

export const MARKER_EXIT = 213;
const MARKER = /^<([A-Z_]+)(?: (.*))?>$/;

export type Marker = { readonly name: string; readonly value: string };

/** The marker on the last line of the (trimmed) output, if the script exited with 213. */
export function readMarker(exitCode: number, output: string | Output): Marker | undefined {
  if (exitCode !== MARKER_EXIT) return undefined;
  const last = typeof output === 'string' ? output.trim().split('\n').pop() ?? '' : lastLine(output);
  const m = MARKER.exec(last);
  return m ? { name: m[1]!, value: m[2] ?? '' } : undefined;
}

/** `ADDRESS host:port` lines anywhere in the output (adhoc allocate). */
export function readAddress(output: string): string | undefined {
  let address: string | undefined;
  for (const line of output.split('\n')) {
    const m = MARKER.exec(line.trim());
    if (m && m[1] === 'ADDRESS') address = m[2] ?? '';
  }
  return address;
}

const MESG_NOISE = 'mesg: ttyname failed: Inappropriate ioctl for device';

/** Trimmed output without the noise some login shells print. */
export const cleanOutput = (output: string): string =>
  (output.startsWith(MESG_NOISE) ? output.slice(MESG_NOISE.length) : output).trim();

/** cleanOutput for bytes. */
export const cleanBytes = (output: Output): Output => trimOutput(stripPrefix(output, MESG_NOISE));

/** The original's error text: a one-line output as is, several lines framed by dashes. */
export function outputError(output: string, fallback: string): string {
  const text = output.trim();
  if (text === '') return fallback;
  return text.includes('\n') ? `\n-----\n${text}\n-----` : text;
}
