/**
 * qemu: a local VM per machine, booted with `-snapshot` from
 * ~/.spread/qemu/<image>.img (missing is fatal), SSH forwarded from
 * 127.0.0.1:P (P random in 59301-59399) with serial and monitor on telnet
 * ports P+100 and P+200, as the original (spec §7); the command line is in
 * qemu-command.ts. The image must accept the system's credentials (default
 * root and the -pass value); the password is also offered to the guest as
 * fw_cfg `opt/spread/rootpw`, for images built to read it.
 *
 * Differences from the original, each for a reason:
 * - `qemu-system-x86_64 -accel kvm|tcg` instead of `kvm`: the original
 *   hangs where KVM is missing or unusable; here it falls back to TCG with
 *   a warning (qemu-command.ts says how KVM is judged).
 * - a port is checked free before use and the start retried when qemu still
 *   finds it taken; the original picks one at random and hopes.
 * - allocation waits for sshd's banner, not an open port: slirp accepts
 *   connections long before the guest listens.
 * - the VM runs in a session of its own, so a Ctrl-C meant for spread does
 *   not kill machines kept with -reuse; discard kills it by its PID, after
 *   checking that the PID is still that qemu.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend as BackendConfig, System } from '../project/types.js';
import { FatalError, MachineGoneError, machineName } from './backend.js';
import type { Backend, BackendContext, Machine, ReuseEntry } from './backend.js';
import { splitCommand } from './host-tool.js';
import { chooseAccel, isPortConflict, pickPort, qemuBiosPath, qemuCommand, qemuDevices, qemuImagePath, qemuMemoryMb, type Accel } from './qemu-command.js';
import { parseAddress } from '../remote/shell-words.js';
import { EARLY_DIAL_MS, readySshMachine, waitSshBanner } from './ssh-ready.js';

const START_ATTEMPTS = 5;
const BOOT_TIMEOUT_MS = 10 * 60_000;

export interface QemuDeps {
  /** Where `.spread/qemu/` lives. @default os.homedir() */
  readonly home?: string;
  /** SPREAD_QEMU_GUI, SPREAD_QEMU_FALLBACK_BIOS_PATH, SPREAD_QEMU_ACCEL. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** True while pid runs a qemu (forwarding `port`, when given); a zombie counts as gone. */
export function isQemuProcess(pid: number, port?: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))) return false;
    return /qemu/.test(cmdline) && (port === undefined || cmdline.includes(`hostfwd=tcp:127.0.0.1:${port}-:22`));
  } catch {
    return false;
  }
}

async function killQemu(pid: number, port?: number): Promise<void> {
  if (!isQemuProcess(pid, port)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw new Error(`cannot discard qemu process ${pid}: ${(err as Error).message}`);
  }
  for (let waited = 0; waited < 10_000 && isQemuProcess(pid, port); waited += 50) await sleep(50);
}

interface Launched {
  readonly pid: number;
  /** Why the process ended, once it has; undefined while it runs. */
  readonly ended: () => string | undefined;
  readonly log: () => string;
  readonly detach: () => void;
}

/** Start qemu detached, output to a private log file; rejects only if it cannot be spawned at all. */
function launch(argv: readonly string[], logPath: string): Promise<Launched> {
  const fd = openSync(logPath, 'w', 0o600);
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let ended: string | undefined;
  child.on('exit', (code, signal) => { ended = signal ? `killed by ${signal}` : `exit status ${code}`; });
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  return new Promise((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new FatalError(`qemu: command not found: ${argv[0]} (install qemu-system-x86, or set engine: in the backend)`) : err);
    });
    child.once('spawn', () => resolve({ pid: child.pid!, ended: () => ended, log, detach: () => child.unref() }));
  });
}

export function qemuBackend(config: BackendConfig, ctx: BackendContext, deps: QemuDeps = {}): Backend {
  const engine = splitCommand(String(config.options['engine'] ?? ''), 'qemu-system-x86_64');
  const home = deps.home ?? homedir();
  const env = deps.env ?? process.env;
  const ports = new Set<number>();
  let accel: Accel | undefined;
  const runOptions = (options: Readonly<Record<string, unknown>>) => (Array.isArray(options['runOptions']) ? options['runOptions'].map(String) : []);

  const pickAccel = (): Accel => {
    if (accel === undefined) {
      const chosen = chooseAccel(env);
      accel = chosen.accel;
      if (chosen.reason) ctx.log(`WARNING: ${chosen.reason}: backend ${JSON.stringify(config.name)} runs qemu under TCG software emulation, which is much slower.`);
    }
    return accel;
  };

  const machineFor = (system: System, pid: number, address: string, credentials: { username: string; password: string }, earlyUntil: number): Machine => {
    const port = parseAddress(address).port;
    return readySshMachine({
      system, label: address, address, ...credentials, data: { pid }, earlyUntil,
      discard: async () => {
        await killQemu(pid, port);
        ports.delete(port);
      },
    });
  };

  /** One boot on one port: the machine, or 'port-taken' when qemu found the port in use. */
  const boot = async (system: System, argv: string[], port: number, signal: AbortSignal): Promise<{ pid: number } | 'port-taken'> => {
    const logPath = join(tmpdir(), `spread-qemu-${process.pid}-${port}-${randomBytes(4).toString('hex')}.log`);
    const label = `${config.name}:${system.name} (127.0.0.1:${port})`;
    try {
      const vm = await launch(argv, logPath);
      try {
        await waitSshBanner(`127.0.0.1:${port}`, {
          signal, timeoutMs: BOOT_TIMEOUT_MS, gone: vm.ended,
          onSlow: () => ctx.log(`Still waiting for ${label} to make SSH available...`),
        });
      } catch (err) {
        const ended = vm.ended();
        await killQemu(vm.pid);
        if (ended === undefined) throw err;
        const output = vm.log().trim();
        if (isPortConflict(output)) return 'port-taken';
        throw new FatalError(`cannot launch qemu ${config.name}:${system.name} (${ended}): ${output.split('\n').slice(-5).join('\n') || 'no output'}`);
      }
      vm.detach();
      return { pid: vm.pid };
    } finally {
      try {
        unlinkSync(logPath);
      } catch {
        // Never created.
      }
    }
  };

  return {
    config,
    async allocate(system, signal) {
      const stop = signal ? AbortSignal.any([signal, ctx.signal]) : ctx.signal;
      const path = qemuImagePath(home, system);
      let isFile = false;
      try {
        isFile = statSync(path).isFile();
      } catch {
        // Reported below.
      }
      if (!isFile) throw new FatalError(`cannot find qemu image at ${path}`);
      const biosPath = qemuBiosPath(system.bios, home, env);
      const { drive, network } = qemuDevices(system);
      const creds = ctx.credentials(system);
      const credentials = { username: creds.username || 'root', password: creds.password || ctx.password };
      const passwordFile = join(tmpdir(), `spread-qemu-pw-${randomBytes(8).toString('hex')}`);
      writeFileSync(passwordFile, ctx.password, { mode: 0o600 });
      try {
        for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
          const port = await pickPort(ports);
          ports.add(port);
          const argv = qemuCommand({
            engine, imagePath: realpathSync(path), memoryMb: qemuMemoryMb(config.memory), port, accel: pickAccel(),
            gui: env['SPREAD_QEMU_GUI'] === '1', ...(biosPath !== undefined ? { biosPath } : {}), drive, network, passwordFile,
            extra: [...runOptions(config.options), ...runOptions(system.options)],
          });
          ctx.log(`Serial and monitor for ${config.name}:${system.name} (127.0.0.1:${port}) available at ports ${port + 100} and ${port + 200}.`);
          ctx.log(`Running ${argv.join(' ')}`, 'debug');
          ctx.log(`Waiting for ${config.name}:${system.name} (127.0.0.1:${port}) to make SSH available...`);
          let booted: { pid: number } | 'port-taken';
          try {
            booted = await boot(system, argv, port, stop);
          } catch (err) {
            ports.delete(port);
            throw err;
          }
          if (booted === 'port-taken') {
            ports.delete(port);
            ctx.log(`Port ${port} of ${config.name}:${system.name} was taken; trying another...`, 'verbose');
            continue;
          }
          const machine = machineFor(system, booted.pid, `127.0.0.1:${port}`, credentials, Date.now() + EARLY_DIAL_MS);
          ctx.log(`Allocated ${machineName(machine)}.`);
          return machine;
        }
        throw new Error(`cannot launch qemu ${config.name}:${system.name}: ports kept being taken`);
      } finally {
        unlinkSync(passwordFile);
      }
    },

    async reuse(entry: ReuseEntry, system) {
      const pid = Number(entry.data?.['pid']);
      if (!Number.isInteger(pid) || pid <= 0) throw new Error('cannot unmarshal qemu reuse data: no pid');
      const { port } = parseAddress(entry.address);
      if (!isQemuProcess(pid, port)) throw new MachineGoneError(`qemu process ${pid} for ${entry.address} is gone`);
      ports.add(port);
      return machineFor(system, pid, entry.address, { username: entry.username ?? 'root', password: entry.password }, 0);
    },
  };
}
