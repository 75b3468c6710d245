/**
 * One instance's part of a multi-machine job, on its worker's machine (the
 * worker has done the nesting): per round, the task's prepare, a meeting
 * with the other instances, execute, another meeting (so no instance
 * restores while another still runs), artifacts, restore, and a last
 * meeting that decides, the same way for all, whether another round
 * (-repeat, -repeat-until) follows. A failing script fails the group's
 * sync state at once, so the others' waits end with an error instead of
 * hanging until their kill-timeout.
 */
import { errorText } from '../events.js';
import { isEmptyOutput, outputText } from '../output.js';
import type { Job } from '../project/types.js';
import { jobEnv } from '../project/job-env.js';
import { fetchArtifacts } from './artifacts.js';
import type { Member } from './group.js';
import { dirOf, shell } from './level-script.js';
import type { InstanceCall, LevelCall, LevelResult, WorkerEnv } from './level-script.js';
import type { MachineLink } from './machine-link.js';
import type { SyncEndpoint } from './sync-link.js';

export interface GroupPart {
  readonly member: Member;
  readonly link: MachineLink;
  readonly env: WorkerEnv;
  readonly endpoint: SyncEndpoint;
  /** The task's joined scripts (see worker.ts). */
  readonly scripts: { readonly prepare: string; readonly restore: string; readonly debug: string };
  readonly stopping: AbortSignal;
  /** Runs one script through the worker (which notes -abend failures). */
  readonly run: (call: LevelCall) => Promise<LevelResult>;
  readonly abended: () => boolean;
  /** Another instance failed under -abend: this one stops too, without restoring. */
  readonly abend: () => void;
}

/** True when the task's restore failed on this machine (its worker then stops trusting it). */
export async function runGroupPart(g: GroupPart): Promise<boolean> {
  const { member } = g;
  const job = member.job;
  try {
    return await rounds(g, job);
  } catch (err) {
    member.leave(`with an error: ${(err as Error).message}`);
    throw err;
  } finally {
    g.endpoint.forget(member.token);
    member.done();
  }
}

async function rounds(g: GroupPart, job: Job): Promise<boolean> {
  const { member, link, env: w } = g;
  const options = w.options;
  const restoreOnly = options.interaction.kind === 'restore';
  member.restoreOnly = restoreOnly;
  const until = options.repeatUntil;
  const chosen = options.shellInstance;
  const instance: InstanceCall = {
    context: member.context,
    instance: member.instance,
    vars: member.vars(),
    syncEnv: (l) => g.endpoint.env(l.session, member.token),
    // -instance picks the one that gets shells; without it -debug serves every failing instance, -shell* the first.
    interactive: chosen !== undefined ? member.instance === chosen : options.interaction.kind === 'debug' || member.instance === 1,
  };
  g.endpoint.register(member.token, { get group() { return member.syncGroup; } });
  const script = (verb: LevelCall['verb'], text: string, debug: string): LevelCall => ({ job, level: 'task', verb, script: text, debug, instance });
  const stops = (failure: LevelResult): boolean => {
    if (!until || until.test(outputText(failure.output)) || (failure.error && until.test(errorText(failure.error, failure.output)))) return true;
    w.emit({ type: 'log', level: 'info', message: `Failure of ${member.context} does not match -repeat-until, repeating...` });
    return false;
  };
  const canRepeat = () => !g.stopping.aborted && !link.isLost && !g.abended();

  let debug = g.scripts.debug;
  let badProject = false;
  const limit = restoreOnly ? 0 : until && options.repeat === 0 ? Infinity : options.repeat;
  for (let left = limit; left >= 0; left--) {
    if (restoreOnly) {
      left = -1;
    } else {
      let failure: LevelResult | undefined;
      const prepared = await g.run(script('preparing', g.scripts.prepare, debug));
      if (!prepared.ok) {
        failure = prepared;
        member.fail('preparing');
      }
      const all = await member.arrive('prepared', { ok: prepared.ok, failed: !prepared.ok });
      let executed: LevelResult | undefined;
      if (all.ok) {
        executed = await g.run(script('executing', job.task.execute, debug));
        if (!executed.ok) {
          failure = executed;
          member.fail('executing');
        }
      }
      const round = await member.arrive('executed', {
        ok: failure === undefined && all.ok, failed: failure !== undefined, canRepeat: canRepeat(), stops: failure ? stops(failure) : true,
      });
      if (!round.ok) {
        if (round.stops || !round.failed) [debug, left] = ['', -1];
        if (executed?.ok && !isEmptyOutput(executed.output)) {
          w.emit({ type: 'log', level: 'info', message: `Output of ${member.context} (${link.label}), which passed:\n-----\n${outputText(executed.output)}\n-----` });
        }
        if (options.interaction.kind === 'abend') g.abend();
        if (options.interaction.kind === 'debug' && chosen === member.instance && failure === undefined && !g.abended()) {
          const env = jobEnv(job, w.evaluated, link.remotePath, instance.vars);
          await shell(link, w, job, dirOf(link, job, 'task'), env, `Starting shell to debug ${member.context} (another instance failed)...`, instance);
        }
      }
      if (!round.canRepeat) left = -1;
    }
    if (!g.abended() && !restoreOnly && left <= 0 && !link.isLost) await fetchArtifacts(link, w, job, `instance-${member.instance}`);
    let restoreOk = true;
    if (!g.abended() && !link.isLost) {
      restoreOk = (await g.run(script('restoring', g.scripts.restore, debug))).ok;
      if (!restoreOk) badProject = true;
    }
    const restored = await member.arrive('restored', { ok: restoreOk, failed: !restoreOk, canRepeat: canRepeat() });
    if (!restored.ok || !restored.canRepeat) left = -1;
  }
  return badProject;
}
