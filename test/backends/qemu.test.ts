/**
 * qemu backend: the command line as tables (memory, ports, bios, GUI,
 * snapshot, devices, accelerator), then one real boot of the cached Debian
 * 12 disk (TCG here: ~25-30 s), skipped off CI when qemu or the disk is
 * missing. ~/.spread/qemu lives in a temporary home that links the disk.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FatalError, type Machine } from '../../src/backends/backend.js';
import { chooseAccel, isPortConflict, OVMF_DEFAULT_PATH, pickPort, qemuBiosPath, qemuCommand, qemuDevices, qemuMemoryMb } from '../../src/backends/qemu-command.js';
import { isQemuProcess, qemuBackend } from '../../src/backends/qemu.js';
import { answers, checkMachine, contextFor, loadYaml, projectName, runOn, skipUnless, systemOf } from './fixture.js';

const DISK = join(process.env.SPREAD_CI_CACHE ?? '/var/cache/spread-ci', 'qemu', 'debian-12.qcow2');
const home = mkdtempSync(join(tmpdir(), 'spread-qemu-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

const base = { imagePath: '/img/u.img', memoryMb: 1500, port: 59310, accel: 'tcg' as const, gui: false, drive: 'ide', network: 'e1000' };

describe('qemu command line', () => {
  test('the original layout: snapshot, memory, forwarded SSH, telnet serial and monitor', () => {
    assert.deepEqual(qemuCommand(base), [
      'qemu-system-x86_64', '-nographic', '-accel', 'tcg', '-snapshot', '-m', '1500',
      '-netdev', 'user,id=user0,hostfwd=tcp:127.0.0.1:59310-:22', '-device', 'e1000,netdev=user0',
      '-serial', 'telnet:127.0.0.1:59410,server,nowait', '-monitor', 'telnet:127.0.0.1:59510,server,nowait',
      '-drive', 'file=/img/u.img,if=ide',
    ]);
  });

  test('GUI, bios, kvm, devices, password, engine and run-options', () => {
    const argv = qemuCommand({
      ...base, engine: ['qemu-system-aarch64', '-M', 'virt'], gui: true, biosPath: '/fw/uefi.img', accel: 'kvm',
      drive: 'virtio', network: 'virtio-net-pci', passwordFile: '/tmp/p,w', imagePath: '/a,b.img', extra: ['-smp', '2'],
    });
    assert.deepEqual(argv, [
      'qemu-system-aarch64', '-M', 'virt', '-bios', '/fw/uefi.img', '-accel', 'kvm', '-snapshot', '-m', '1500',
      '-netdev', 'user,id=user0,hostfwd=tcp:127.0.0.1:59310-:22', '-device', 'virtio-net-pci,netdev=user0',
      '-serial', 'telnet:127.0.0.1:59410,server,nowait', '-monitor', 'telnet:127.0.0.1:59510,server,nowait',
      '-fw_cfg', 'name=opt/spread/rootpw,file=/tmp/p,,w', '-drive', 'file=/a,,b.img,if=virtio', '-smp', '2',
    ]);
  });

  test('memory: backend size in MiB, 1500 by default', () => {
    assert.equal(qemuMemoryMb(0), 1500);
    assert.equal(qemuMemoryMb(500 * 1024 * 1024), 500);
    assert.equal(qemuMemoryMb(2 * 1024 * 1024 * 1024), 2048);
    const p = loadYaml(`project: ${projectName('qemu')}\npath: /home/test\nbackends:\n    qemu:\n        memory: 500M\n        systems: [ubuntu-16.04]\nsuites:\n    tests/:\n        summary: t\n`);
    assert.equal(qemuMemoryMb(p.backends[0]!.memory), 500);
  });

  test('bios: uefi from ~/.spread/qemu/bios, then SPREAD_QEMU_FALLBACK_BIOS_PATH, then OVMF; others refused', () => {
    assert.equal(qemuBiosPath('', '/h', {}), undefined);
    assert.equal(qemuBiosPath('uefi', '/h', {}, (p) => p === '/h/.spread/qemu/bios/uefi.img'), '/h/.spread/qemu/bios/uefi.img');
    assert.equal(qemuBiosPath('uefi', '/h', { SPREAD_QEMU_FALLBACK_BIOS_PATH: '/fw' }, () => false), '/fw/uefi.img');
    assert.equal(qemuBiosPath('uefi', '/h', {}, () => false), OVMF_DEFAULT_PATH);
    assert.throws(() => qemuBiosPath('invalid', '/h', {}), (err: Error) =>
      err instanceof FatalError && err.message === 'cannot set bios to "invalid", only "uefi" or unset are supported');
  });

  test('device-backends: ide and e1000 unless set; one word each', () => {
    assert.deepEqual(qemuDevices({ name: 's-1', options: {} }), { drive: 'ide', network: 'e1000' });
    assert.deepEqual(qemuDevices({ name: 's-1', options: { deviceBackends: { drive: 'virtio' } } }), { drive: 'virtio', network: 'e1000' });
    assert.throws(() => qemuDevices({ name: 's-1', options: { deviceBackends: { network: 'e1000 -hda /etc/shadow' } } }), FatalError);
  });

  test('accelerator: KVM only when /dev/kvm opens and is not kvm_pvm alone', () => {
    const host = (files: string[], opens = true) => ({ exists: (p: string) => files.includes(p), canOpen: () => opens });
    assert.deepEqual(chooseAccel({}, host(['/dev/kvm', '/sys/module/kvm_intel'])), { accel: 'kvm' });
    assert.deepEqual(chooseAccel({}, host(['/dev/kvm', '/sys/module/kvm_pvm', '/sys/module/kvm_amd'])), { accel: 'kvm' });
    assert.equal(chooseAccel({}, host(['/dev/kvm', '/sys/module/kvm_pvm'])).accel, 'tcg');
    assert.match(chooseAccel({}, host(['/dev/kvm', '/sys/module/kvm_pvm'])).reason!, /kvm_pvm/);
    assert.equal(chooseAccel({}, host([])).accel, 'tcg');
    assert.equal(chooseAccel({}, host(['/dev/kvm'], false)).accel, 'tcg');
    assert.deepEqual(chooseAccel({ SPREAD_QEMU_ACCEL: 'kvm' }, host([])), { accel: 'kvm' });
  });

  test('ports: P in 59301-59399, never one already taken', async () => {
    const taken = new Set(Array.from({ length: 98 }, (_, i) => 59301 + i));
    assert.equal(await pickPort(taken), 59399);
    for (let i = 0; i < 20; i++) {
      const p = await pickPort(new Set());
      assert.ok(p >= 59301 && p <= 59399, String(p));
    }
    assert.ok(isPortConflict('qemu-system-x86_64: -netdev user,id=user0,hostfwd=tcp:127.0.0.1:59310-:22: Could not set up host forwarding rule'));
    assert.ok(isPortConflict('qemu-system-x86_64: -serial telnet:127.0.0.1:59410,server,nowait: Failed to bind socket: Address already in use'));
    assert.ok(!isPortConflict('qemu: could not load PC BIOS'));
  });
});

const name = projectName('qemu');
const yaml = (engine = '') => `project: ${name}
path: /home/test
backends:
    qemu:
${engine}        memory: 1024M
        run-options: [-smp, "2"]
        systems:
            - debian-12:
                device-backends: {drive: virtio, network: virtio-net-pci}
            - nosuch-1
suites:
    tests/:
        summary: tests
`;

describe('qemu backend', () => {
  const project = loadYaml(yaml());
  const system = systemOf(project, 'qemu', 'debian-12');
  const machines: Machine[] = [];
  after(async () => {
    await Promise.all(machines.map((m) => m.discard().catch(() => {})));
  });

  test('a missing image or emulator is a FatalError', async () => {
    await assert.rejects(qemuBackend(project.backends[0]!, contextFor(project), { home }).allocate(systemOf(project, 'qemu', 'nosuch-1')),
      (err: Error) => err instanceof FatalError && err.message === `cannot find qemu image at ${home}/.spread/qemu/nosuch-1.img`);
    const fakeHome = mkdtempSync(join(tmpdir(), 'spread-qemu-fake-'));
    try {
      mkdirSync(join(fakeHome, '.spread', 'qemu'), { recursive: true });
      writeFileSync(join(fakeHome, '.spread', 'qemu', 'debian-12.img'), '');
      const missing = loadYaml(yaml('        engine: /nonexistent/qemu-system-x86_64\n'));
      await assert.rejects(qemuBackend(missing.backends[0]!, contextFor(missing), { home: fakeHome }).allocate(systemOf(missing, 'qemu', 'debian-12')),
        (err: Error) => err instanceof FatalError && err.message === 'qemu: command not found: /nonexistent/qemu-system-x86_64 (install qemu-system-x86, or set engine: in the backend)');
    } finally {
      rmSync(fakeHome, { recursive: true, force: true });
    }
  });

  const ready = answers(['qemu-system-x86_64', '--version']) && existsSync(DISK);
  test('boots the Debian 12 disk, runs a script, is reused by PID, and dies on discard', {
    skip: skipUnless(ready, `qemu-system-x86_64 or ${DISK} is not available here (run .ci/engines.sh --images qemu)`), timeout: 300_000,
  }, async () => {
    mkdirSync(join(home, '.spread', 'qemu'), { recursive: true });
    symlinkSync(DISK, join(home, '.spread', 'qemu', 'debian-12.img'));
    const ctx = contextFor(project, { keep: true });
    const m = await qemuBackend(project.backends[0]!, ctx, { home }).allocate(system);
    machines.push(m);
    const log = ctx.logs.join('\n');
    assert.match(m.address, /^127\.0\.0\.1:(\d+)$/);
    const port = Number(m.address.split(':')[1]);
    assert.ok(port >= 59301 && port <= 59399);
    assert.match(log, new RegExp(`Serial and monitor for qemu:debian-12 \\(127\\.0\\.0\\.1:${port}\\) available at ports ${port + 100} and ${port + 200}\\.`));
    assert.match(log, new RegExp(`Allocated qemu:debian-12 \\(127\\.0\\.0\\.1:${port}\\)\\.`));
    if (chooseAccel(process.env).accel === 'tcg') assert.match(log, /WARNING: .*TCG software emulation/);
    assert.match(await checkMachine(m), /\S/);
    const entry = m.reuseEntry();
    const pid = entry.data?.['pid'] as number;
    assert.ok(isQemuProcess(pid, port), 'qemu runs under the recorded PID');
    const again = await qemuBackend(project.backends[0]!, contextFor(project), { home }).reuse(entry, system);
    assert.match(await runOn(again, 'cat /proc/meminfo | head -1'), /MemTotal:\s+\d+ kB/);
    await again.discard();
    assert.equal(isQemuProcess(pid), false, 'qemu is gone after discard');
    await assert.rejects(qemuBackend(project.backends[0]!, contextFor(project), { home }).reuse(entry, system), /qemu process \d+ .* is gone/);
  });
});
