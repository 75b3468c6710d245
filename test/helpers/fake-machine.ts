/**
 * A "cloud instance" for the fake control planes (fake-gce.ts,
 * fake-openstack.ts): a real sshd on its own loopback address 127.0.0.N
 * port 22, in mount and PID namespaces of its own (see sshd.ts for the
 * technique), booted the way cloud images boot:
 *
 * - /etc is a private copy, root's password is locked, and sshd reads
 *   /etc/ssh/sshd_config with root login and password authentication off
 *   (`Include sshd_config.d/*.conf` first, and a 60-cloudimg-settings.conf
 *   saying `PasswordAuthentication no`, as Ubuntu's cloud images do). Only
 *   what the backend sends (a GCE startup script, cloud-init user data) can
 *   let spread in: the fakes run it for real with `runAsRoot`.
 * - /dev is a private tmpfs with the usual nodes and serial ports ttyS0 and
 *   ttyS2 that are real character devices (pty slaves held open by
 *   `script`), so `test -c /dev/ttyS0 && echo ... > /dev/ttyS0` works and
 *   what is written is served as the serial console (`serial()`).
 * - /etc/fake-instance holds the instance name, for tests to check where a
 *   job ran.
 *
 * Addresses: 127.0.0.100-250, reserved through files in
 * /tmp/spread-fake-cloud-addresses (holder pid inside; stale entries of dead
 * processes are taken over) and probed by binding port 22, so concurrent test
 * runs in other worktrees never share one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { collect } from './sshd.js';

const LOCKS = '/tmp/spread-fake-cloud-addresses';
const S = '/run/fake';

// pid 1 of the namespaces; HOST and NAME come in the environment.
const INIT = `
set -eu
unset FAKE_MACHINE_INIT
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd
mkdir -m 700 ${S}
for d in /tmp:1777 /root:700 /home:755 /var/log:755; do mount -t tmpfs -o mode=\${d#*:} tmpfs \${d%:*}; done
mkdir ${S}/etc && cp -a /etc/. ${S}/etc/ && mount --bind ${S}/etc /etc
sed -i 's|^root:[^:]*:|root:*:|' /etc/shadow
echo "$NAME" > /etc/fake-instance
rm -rf /etc/ssh/sshd_config.d /etc/ssh/ssh_host_*
mkdir -p /etc/ssh/sshd_config.d
ssh-keygen -q -t ed25519 -N '' -C "$NAME" -f /etc/ssh/ssh_host_ed25519_key
echo 'PasswordAuthentication no' > /etc/ssh/sshd_config.d/60-cloudimg-settings.conf
cat > /etc/ssh/sshd_config <<EOF
Include /etc/ssh/sshd_config.d/*.conf
Port 22
ListenAddress $HOST
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
Subsystem sftp internal-sftp
EOF

mkdir ${S}/hostdev && mount --bind /dev ${S}/hostdev
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero full random urandom tty; do touch /dev/$n; mount --bind ${S}/hostdev/$n /dev/$n; done
umount ${S}/hostdev
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
mount -t tmpfs tmpfs /dev/shm
for port in ttyS0 ttyS2; do
  setsid script -q -f -E never -c "tty > ${S}/$port.name; exec sleep infinity" ${S}/$port.log </dev/null >/dev/null 2>&1 &
done
for port in ttyS0 ttyS2; do
  while [ ! -s ${S}/$port.name ]; do sleep 0.01; done
  touch /dev/$port; mount --bind "$(cat ${S}/$port.name)" /dev/$port
done
echo "[    0.000000] Linux version 6.8.0 (fake) #1 SMP" > /dev/ttyS0
/usr/sbin/sshd -f /etc/ssh/sshd_config -E ${S}/sshd.log
echo ready
set +e
while read -r _; do :; done
`;

export interface FakeMachine {
  readonly name: string;
  /** 127.0.0.N; sshd listens on port 22. */
  readonly host: string;
  /** Run a bash script as root inside (startup scripts, cloud-init); resolves with its status and output. */
  runAsRoot(script: string, o?: { shell?: string; output?: 'ttyS0' }): Promise<{ code: number | null; output: string }>;
  /** What was written to /dev/<port> since boot. */
  serial(port: 'ttyS0' | 'ttyS2'): string;
  /** Kill everything inside and free the address; idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const canBind = (host: string): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(22, host, () => server.close(() => resolve(true)));
  });

/** Reserve a free 127.0.0.N (N in 100..250); release() gives it back. */
async function reserveAddress(): Promise<{ host: string; release: () => void }> {
  mkdirSync(LOCKS, { recursive: true });
  const start = 100 + Math.floor(Math.random() * 151);
  for (let i = 0; i < 151; i++) {
    const n = 100 + ((start - 100 + i) % 151);
    const file = `${LOCKS}/127.0.0.${n}`;
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
    } catch {
      let holder = 0;
      try {
        holder = Number(readFileSync(file, 'utf8'));
      } catch {
        continue;
      }
      if (holder > 0 && (holder === process.pid || alive(holder))) continue;
      // A dead holder's entry: take it over (a rare race costs one more probe below).
      writeFileSync(file, String(process.pid));
    }
    const host = `127.0.0.${n}`;
    if (await canBind(host)) return { host, release: () => rmSync(file, { force: true }) };
    rmSync(file, { force: true });
  }
  throw new Error('no free loopback address 127.0.0.100-250 for a fake cloud instance');
}

/** Boot a fake instance named `name`; its sshd is listening when this resolves. */
export async function bootMachine(name: string): Promise<FakeMachine> {
  const { host, release } = await reserveAddress();
  const holder = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--kill-child', '--propagation', 'private',
    '/bin/bash', '-c', 'eval "$FAKE_MACHINE_INIT"'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', FAKE_MACHINE_INIT: INIT, HOST: host, NAME: name },
  });
  live.add(holder);
  const exited = collect(holder);
  exited.finally(() => live.delete(holder)).catch(() => {});
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= (async () => {
    holder.stdin?.end();
    holder.kill('SIGKILL');
    await exited.catch(() => {});
    release();
  })());
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
      exited.then(({ code, err }) => reject(new Error(`fake instance ${name} failed to boot (${code}): ${err.trim()}`)), reject);
    });
    const initPid = Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(' ')[0]);
    if (!Number.isInteger(initPid) || initPid <= 0) throw new Error('cannot find the fake instance namespace init');
    const inside = (path: string) => `/proc/${initPid}/root${path}`;
    let scripts = 0;
    return {
      name, host, stop,
      async runAsRoot(script, o = {}) {
        const file = `${S}/script-${++scripts}`;
        writeFileSync(inside(file), script, { mode: 0o700 });
        const redirect = o.output ? ` 2>&1 | while IFS= read -r line; do echo "${name} script: $line" > /dev/${o.output}; echo "$line"; done` : ' 2>&1';
        const child = spawn('nsenter', ['-t', String(initPid), '-m', '-p', '--wd=/', '--', '/bin/bash', '-c',
          `set -o pipefail; ${o.shell ?? '/bin/bash'} ${file} </dev/null${redirect}`], { stdio: ['ignore', 'pipe', 'pipe'] });
        const { code, out, err } = await collect(child);
        return { code, output: out + err };
      },
      serial(port) {
        try {
          // `script` opens its log with one header line of its own.
          const text = readFileSync(inside(`${S}/${port}.log`), 'utf8');
          return text.slice(text.indexOf('\n') + 1);
        } catch {
          return '';
        }
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
