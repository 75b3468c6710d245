/**
 * The qemu command line and the host facts it depends on (accelerator,
 * firmware, free ports), as functions without side effects beyond probing,
 * so the exact arguments are unit-tested without booting anything.
 */
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { System } from '../project/types.js';
import { FatalError } from './backend.js';

export const OVMF_DEFAULT_PATH = '/usr/share/OVMF/OVMF_CODE.fd';
export const DEFAULT_MEMORY_MB = 1500;
/** SSH is forwarded from P, serial and monitor listen on P+100 and P+200. */
export const PORT_MIN = 59301;
export const PORT_COUNT = 99;

export type Accel = 'kvm' | 'tcg';

export interface QemuCommandInput {
  /** The emulator and any leading arguments. @default ['qemu-system-x86_64'] */
  readonly engine?: readonly string[];
  readonly imagePath: string;
  readonly memoryMb: number;
  readonly port: number;
  readonly accel: Accel;
  /** SPREAD_QEMU_GUI=1: keep the graphical console. */
  readonly gui: boolean;
  readonly biosPath?: string;
  readonly drive: string;
  readonly network: string;
  /** Given to the guest as fw_cfg `opt/spread/rootpw` (images may set root's password from it). */
  readonly passwordFile?: string;
  /** `run-options` of the backend, then of the system. */
  readonly extra?: readonly string[];
}

/** In a -drive/-fw_cfg value a comma is written twice. */
const optValue = (s: string): string => s.replace(/,/g, ',,');

export function qemuCommand(i: QemuCommandInput): string[] {
  const p = i.port;
  return [
    ...(i.engine ?? ['qemu-system-x86_64']),
    ...(i.gui ? [] : ['-nographic']),
    ...(i.biosPath !== undefined ? ['-bios', i.biosPath] : []),
    '-accel', i.accel,
    '-snapshot',
    '-m', String(i.memoryMb),
    '-netdev', `user,id=user0,hostfwd=tcp:127.0.0.1:${p}-:22`,
    '-device', `${i.network},netdev=user0`,
    '-serial', `telnet:127.0.0.1:${p + 100},server,nowait`,
    '-monitor', `telnet:127.0.0.1:${p + 200},server,nowait`,
    ...(i.passwordFile !== undefined ? ['-fw_cfg', `name=opt/spread/rootpw,file=${optValue(i.passwordFile)}`] : []),
    '-drive', `file=${optValue(i.imagePath)},if=${i.drive}`,
    ...(i.extra ?? []),
  ];
}

/** Backend `memory` (bytes) in MiB, 1500 when unset. */
export const qemuMemoryMb = (bytes: number): number => (bytes > 0 ? Math.floor(bytes / (1024 * 1024)) : DEFAULT_MEMORY_MB);

export const qemuImagePath = (home: string, system: Pick<System, 'image'>): string => join(home, '.spread', 'qemu', `${system.image}.img`);

const isFile = (path: string): boolean => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** Firmware for `bios:` (the original's rules); undefined for the default BIOS. */
export function qemuBiosPath(bios: string, home: string, env: Readonly<Record<string, string | undefined>>, exists: (path: string) => boolean = isFile): string | undefined {
  if (bios === '') return undefined;
  if (bios !== 'uefi') throw new FatalError(`cannot set bios to ${JSON.stringify(bios)}, only "uefi" or unset are supported`);
  const local = join(home, '.spread', 'qemu', 'bios', `${bios}.img`);
  if (exists(local)) return local;
  const fallback = env['SPREAD_QEMU_FALLBACK_BIOS_PATH'];
  if (fallback) return join(fallback, `${bios}.img`);
  return OVMF_DEFAULT_PATH;
}

/** `device-backends` of a system: the guest's disk interface and network card, single words. */
export function qemuDevices(system: Pick<System, 'options' | 'name'>): { drive: string; network: string } {
  const given = (system.options['deviceBackends'] ?? {}) as Readonly<Record<string, unknown>>;
  const devices = { drive: String(given['drive'] ?? 'ide'), network: String(given['network'] ?? 'e1000') };
  for (const [device, value] of Object.entries(devices)) {
    if (!/^[\w.-]+$/.test(value)) throw new FatalError(`invalid backend for device ${device} of ${system.name}: ${JSON.stringify(value)}`);
  }
  return devices;
}

export interface AccelProbe {
  readonly exists: (path: string) => boolean;
  readonly canOpen: (path: string) => boolean;
}

const hostProbe: AccelProbe = {
  exists: existsSync,
  canOpen: (path) => {
    try {
      closeSync(openSync(path, 'r+'));
      return true;
    } catch {
      return false;
    }
  },
};

/**
 * KVM when /dev/kvm opens and is a full KVM. kvm_pvm (a pagetable-based KVM
 * found in some nested clouds) initialises fine but runs only PVM-enabled
 * guest kernels: a stock kernel hangs at boot, so that counts as no KVM.
 * SPREAD_QEMU_ACCEL=kvm|tcg overrides the probe.
 */
export function chooseAccel(env: Readonly<Record<string, string | undefined>>, probe: AccelProbe = hostProbe): { accel: Accel; reason?: string } {
  const forced = env['SPREAD_QEMU_ACCEL'];
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, ...(forced === 'tcg' ? { reason: 'SPREAD_QEMU_ACCEL=tcg' } : {}) };
  if (!probe.exists('/dev/kvm')) return { accel: 'tcg', reason: 'there is no /dev/kvm' };
  if (!probe.canOpen('/dev/kvm')) return { accel: 'tcg', reason: 'cannot open /dev/kvm (is this user in the kvm group?)' };
  if (probe.exists('/sys/module/kvm_pvm') && !probe.exists('/sys/module/kvm_intel') && !probe.exists('/sys/module/kvm_amd')) {
    return { accel: 'tcg', reason: '/dev/kvm is kvm_pvm, which cannot boot stock guest kernels' };
  }
  return { accel: 'kvm' };
}

const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });

/** A random P in 59301-59399 with P, P+100 and P+200 free here and not in `taken`; the others in turn if it is not. */
export async function pickPort(taken: ReadonlySet<number>, random: () => number = Math.random): Promise<number> {
  const start = Math.floor(random() * PORT_COUNT);
  for (let i = 0; i < PORT_COUNT; i++) {
    const port = PORT_MIN + ((start + i) % PORT_COUNT);
    if (taken.has(port)) continue;
    if ((await portFree(port)) && (await portFree(port + 100)) && (await portFree(port + 200))) return port;
  }
  throw new Error(`no free port for qemu in ${PORT_MIN}-${PORT_MIN + PORT_COUNT - 1}`);
}

/** qemu's complaints when a port it was given is taken: pick another and start again. */
export const isPortConflict = (log: string): boolean =>
  /could not set up host forwarding rule|address already in use|failed to bind socket/i.test(log);
