/** From parsed flags to RunOptions: the only place flags are interpreted. */
import type { FlagValues } from './flags.js';
import type { Interaction, RunOptions } from '../run/options.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function toRunOptions(v: FlagValues): RunOptions {
  const on = (name: string): boolean => v[name] === true;
  const modes = [on('debug'), on('shell'), on('shell-before') || on('shell-after'), on('abend'), on('restore')];
  if (modes.filter(Boolean).length > 1) {
    throw new UsageError('cannot have more than one of -debug, -shell, -shell-before/after, -abend, and -restore');
  }
  let interaction: Interaction = { kind: 'none' };
  if (on('debug')) interaction = { kind: 'debug' };
  else if (on('shell')) interaction = { kind: 'shell' };
  else if (on('shell-before') || on('shell-after')) interaction = { kind: 'shell-around', before: on('shell-before'), after: on('shell-after') };
  else if (on('abend')) interaction = { kind: 'abend' };
  else if (on('restore')) interaction = { kind: 'restore' };
  const reusePid = (v['reuse-pid'] as number | undefined) ?? 0;
  const discard = on('discard');
  const repeat = (v['repeat'] as number | undefined) ?? 0;
  if (repeat < 0) throw new UsageError(`-repeat must be 0 or more, not ${repeat}`);
  let repeatUntil: RegExp | undefined;
  const until = v['repeat-until'] as string | undefined;
  if (until !== undefined && until !== '' && interaction.kind === 'restore') throw new UsageError('cannot have both -repeat-until and -restore');
  if (until !== undefined && until !== '') {
    try {
      repeatUntil = new RegExp(until, 'm');
    } catch (err) {
      throw new UsageError(`-repeat-until: invalid regular expression ${JSON.stringify(until)}: ${(err as Error).message}`);
    }
  }
  const instance = v['instance'] as number | undefined;
  if (instance !== undefined && instance < 1) throw new UsageError(`-instance must be 1 or more, not ${instance}`);
  const pass = v['pass'] as string | undefined;
  let random: string | undefined;
  return {
    // Made when first read (by a run; -list never does), so listing loads no crypto.
    get password(): string {
      return pass || (random ??= Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(8))).toString('hex'));
    },
    verbosity: on('vv') ? 2 : on('v') ? 1 : 0,
    // -discard without -reuse-pid works on the shared reuse file.
    reuse: on('reuse') || (discard && reusePid === 0),
    reusePid,
    resend: on('resend'),
    discard,
    interaction,
    artifacts: (v['artifacts'] as string | undefined) || undefined,
    ...(on('artifacts-safe-names') ? { artifactsSafeNames: true } : {}),
    seed: (v['seed'] as number | undefined) ?? 0,
    repeat,
    ...(repeatUntil ? { repeatUntil } : {}),
    gc: on('gc'),
    history: v['history'] !== false,
    ...(instance !== undefined ? { shellInstance: instance } : {}),
  };
}
