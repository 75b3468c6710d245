/**
 * Real OpenSSH servers for tests, each sealed in namespaces of its own so
 * that nothing on the machine running the tests is reconfigured.
 *
 * How it works:
 * - `unshare --mount --pid --fork --mount-proc --kill-child` starts a bash
 *   "init" (pid 1 of a new PID namespace, in a new private mount namespace).
 *   The PID namespace is the cleanup guarantee: when the init dies, the kernel
 *   SIGKILLs every process inside (sshd, sessions, leftover script children).
 *   The init dies when the test process closes its stdin (also when the test
 *   process crashes, because the pipe then closes), or when `unshare` is
 *   killed (`--kill-child`). An `exit` hook kills survivors as a last resort.
 * - Inside, the init mounts private tmpfs over /run, /tmp, /root, /home and
 *   /var/log, copies /etc/passwd, /etc/shadow, /etc/group and
 *   /etc/sudoers.d to /run/spread-sshd and bind-mounts the copies back:
 *   root gets a test password and a `spread` user (passwordless sudo) exists
 *   only there. Host keys, config, pid file and log live in /run/spread-sshd.
 * - ~/.bashrc of root and of `spread` appends a line to ~/.bashrc.log (so
 *   tests can count logins) and sleeps 0.1 s with `slowLogin`; /root/.profile
 *   is Debian's (sources .bashrc, `mesg n`), as `sudo -i` needs it.
 * - sshd runs without PAM (it reads the private /etc/shadow directly), so no
 *   login records or PAM sessions touch the host. MaxStartups is raised so
 *   parallel test connections are never dropped before authentication.
 * - Rebootable targets: /proc/sys/kernel/random/boot_id is a bind-mounted
 *   regular file, and /usr/local/sbin (a tmpfs, first on root's PATH) holds
 *   a `reboot` that detaches a helper (`setsid -f`). The helper kills every
 *   process of the namespace except the init (like a real reboot, script
 *   leftovers die too), writes a new boot id and starts sshd again on the same
 *   address. Non-rebootable targets get a `reboot` that refuses. Even the real
 *   one could not reach the host: systemd's socket is hidden by the private
 *   /run, and reboot(2) from a PID namespace only ends that namespace.
 * - Only 127.0.0.x addresses are used; the network namespace is the host's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export interface SshdOptions {
  /** A loopback address 127.0.0.x. @default '127.0.0.1' */
  readonly host?: string;
  /** @default a free port */
  readonly port?: number;
  /** root's and the user's ~/.bashrc sleep 0.1 s, like heavy real images. @default false */
  readonly slowLogin?: boolean;
  /** Adds a MaxSessions line. @default none (OpenSSH's 10) */
  readonly maxSessions?: number;
  /** Adds `AllowTcpForwarding no` (remote forwards refused, as on some hardened images). @default false */
  readonly noForwarding?: boolean;
  /** `reboot` restarts sshd with a new boot id. @default false */
  readonly rebootable?: boolean;
  /** Passwords (several targets standing for the machines of one system share them). @default random */
  readonly rootPassword?: string;
  readonly userPassword?: string;
}

export interface SshdTarget {
  readonly host: string;
  readonly port: number;
  /** `host:port` */
  readonly address: string;
  readonly rootPassword: string;
  /** A user with passwordless sudo: 'spread'. */
  readonly user: string;
  readonly userPassword: string;
  /** Kill everything in the namespace, for good; idempotent. */
  stop(): Promise<void>;
  /** Kill the sshd processes serving connections; the listener stays. */
  killConnections(): Promise<void>;
  /** Restart the listener (like `systemctl restart ssh`): open connections stay. */
  restart(): Promise<void>;
  /** The boot id as seen inside the namespace. */
  bootId(): string;
  /** Run a bash command inside the namespace as root; rejects on failure. */
  run(cmd: string): Promise<string>;
}

/** Why real sshd tests cannot run here, or undefined when they can. */
export const sshdUnavailable = (): string | undefined => {
  if (process.getuid?.() !== 0) return 'test sshd needs root (mount and PID namespaces)';
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/ssh-keygen', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/perl']) {
    if (!existsSync(bin)) return `test sshd needs ${bin}`;
  }
  return undefined;
};

/** For `test(name, { skip: sshdSkip() }, ...)`: a reason off CI, never on CI (there a missing tool must fail). */
export const sshdSkip = (): string | false => {
  const reason = sshdUnavailable();
  return reason !== undefined && process.env.CI !== 'true' ? reason : false;
};

/** For tests that log in as the sudo user: sudo is not part of openssh-server. */
export const sudoSkip = (): string | false =>
  !existsSync('/usr/bin/sudo') && process.env.CI !== 'true' ? 'the non-root test user needs /usr/bin/sudo' : false;

const DIR = '/run/spread-sshd';

// Runs as pid 1 of the namespaces. Parameters come in the environment.
const INIT = `
set -eu
unset SPREAD_SSHD_INIT
S=${DIR}
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd
mkdir -m 700 $S
for d in /tmp:1777 /root:700 /home:755 /var/log:755; do mount -t tmpfs -o mode=\${d#*:} tmpfs \${d%:*}; done

crypt() { perl -e 'print crypt($ARGV[0], q($6$) . $ARGV[1] . q($))' "$1" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' ')"; }
uid=4242
while cut -d: -f3 /etc/passwd | grep -qx $uid; do uid=$((uid + 1)); done
cp -p /etc/passwd /etc/shadow /etc/group $S/
sed -i '/^spread:/d' $S/passwd $S/shadow $S/group
sed -i "s|^root:[^:]*:|root:$(crypt "$ROOT_PW"):|" $S/shadow
echo "spread:x:$uid:$uid:spread test user:/home/spread:/bin/bash" >> $S/passwd
echo "spread:$(crypt "$USER_PW"):19000:0:99999:7:::" >> $S/shadow
echo "spread:x:$uid:" >> $S/group
for f in passwd shadow group; do mount --bind $S/$f /etc/$f; done
if [ -d /etc/sudoers.d ]; then
  cp -rp /etc/sudoers.d $S/sudoers.d
  echo 'spread ALL=(ALL) NOPASSWD:ALL' > $S/sudoers.d/spread-test
  chmod 440 $S/sudoers.d/spread-test
  mount --bind $S/sudoers.d /etc/sudoers.d
fi

mkdir -m 755 /home/spread
for h in /root /home/spread; do
  echo 'echo "$$ $(date +%s.%N)" >> ~/.bashrc.log' > $h/.bashrc
  if [ "$SLOW" = 1 ]; then echo 'sleep 0.1' >> $h/.bashrc; fi
  cat > $h/.profile <<'EOF'
if [ "$BASH" ]; then if [ -f ~/.bashrc ]; then . ~/.bashrc; fi; fi
mesg n 2> /dev/null || true
EOF
done
chown -R $uid:$uid /home/spread

ssh-keygen -q -t ed25519 -N '' -C spread-test -f $S/host_ed25519
cat > $S/sshd_config <<EOF
Port $SSHD_PORT
ListenAddress $SSHD_HOST
HostKey $S/host_ed25519
PidFile $S/sshd.pid
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
Subsystem sftp internal-sftp
EOF
if [ -n "$MAX_SESSIONS" ]; then echo "MaxSessions $MAX_SESSIONS" >> $S/sshd_config; fi
if [ "$NO_FORWARDING" = 1 ]; then echo "AllowTcpForwarding no" >> $S/sshd_config; fi
cat > $S/start-sshd <<'EOF'
#!/bin/bash
# A listener just killed must be gone (or a zombie) before the new one binds its address.
if [ -s ${DIR}/sshd.pid ]; then
  p=$(cat ${DIR}/sshd.pid)
  for i in $(seq 300); do s=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null) || break; [ "$s" = Z ] && break; sleep 0.01; done
fi
exec /usr/sbin/sshd -f ${DIR}/sshd_config -E ${DIR}/sshd.log
EOF
chmod 755 $S/start-sshd

mount -t tmpfs -o mode=755 tmpfs /usr/local/sbin
if [ "$REBOOTABLE" = 1 ]; then
  cat /proc/sys/kernel/random/uuid > $S/boot_id
  mount --bind $S/boot_id /proc/sys/kernel/random/boot_id
  cat > /usr/local/sbin/reboot <<'EOF'
#!/bin/bash
setsid -f ${DIR}/do-reboot </dev/null >/dev/null 2>&1
EOF
  cat > $S/do-reboot <<'EOF'
#!/bin/bash
sleep 0.1
kill -9 $(cat ${DIR}/sshd.pid) 2>/dev/null
for round in 1 2; do
  for p in /proc/[0-9]*; do p=\${p#/proc/}; [ $p = 1 ] || [ $p = $$ ] || kill -9 $p 2>/dev/null; done
done
cat /proc/sys/kernel/random/uuid > ${DIR}/boot_id
exec ${DIR}/start-sshd
EOF
  chmod 755 $S/do-reboot
else
  cat > /usr/local/sbin/reboot <<'EOF'
#!/bin/bash
echo "reboot: this test sshd is not rebootable" >&2
exit 1
EOF
fi
chmod 755 /usr/local/sbin/reboot
$S/start-sshd
echo ready
set +e
while read -r _; do :; done
`;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export const freePort = (host = '127.0.0.1'): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

// One attempt to read an SSH banner: true once sshd answers.
const hasBanner = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('data', (data) => done(data.toString('latin1').startsWith('SSH-')));
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
  });

const waitForBanner = async (host: string, port: number, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await hasBanner(host, port))) {
    if (Date.now() > deadline) throw new Error(`test sshd on ${host}:${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

export const collect = (child: ChildProcess): Promise<{ code: number | null; out: string; err: string }> =>
  new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, err }));
  });

const startOnce = async (host: string, port: number, opts: SshdOptions): Promise<SshdTarget> => {
  const rootPassword = opts.rootPassword ?? `root-${randomBytes(6).toString('hex')}`;
  const userPassword = opts.userPassword ?? `user-${randomBytes(6).toString('hex')}`;
  // The script travels in the environment to keep `ps` on the host readable.
  const holder = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--kill-child',
    '--propagation', 'private', '/bin/bash', '-c', 'eval "$SPREAD_SSHD_INIT"'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', SPREAD_SSHD_INIT: INIT,
      SSHD_HOST: host, SSHD_PORT: String(port), ROOT_PW: rootPassword, USER_PW: userPassword,
      SLOW: opts.slowLogin ? '1' : '0', REBOOTABLE: opts.rebootable ? '1' : '0',
      MAX_SESSIONS: opts.maxSessions === undefined ? '' : String(opts.maxSessions),
      NO_FORWARDING: opts.noForwarding ? '1' : '0',
    },
  });
  live.add(holder);
  const exited = collect(holder);
  exited.finally(() => live.delete(holder)).catch(() => {});
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      holder.stdin?.end();
      holder.kill('SIGKILL');
    }
    await exited.catch(() => {});
  };

  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
      exited.then(({ code, err }) => reject(new Error(`test sshd setup failed (${code}): ${err.trim()}`)), reject);
    });
    // The init is the only child of unshare; its host pid is what nsenter needs.
    const initPid = Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(' ')[0]);
    if (!Number.isInteger(initPid) || initPid <= 0) throw new Error('cannot find the test sshd namespace init');

    const run = async (cmd: string): Promise<string> => {
      const child = spawn('nsenter', ['-t', String(initPid), '-m', '-p', '--wd=/', '--', '/bin/bash', '-c', cmd],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      const { code, out, err } = await collect(child);
      if (code !== 0) throw new Error(`test sshd command failed (${code}): ${cmd}\n${err}${out}`);
      return out;
    };
    // sshd processes other than the listener serve connections.
    const killConnections = async (): Promise<void> => {
      await run(`l=$(cat ${DIR}/sshd.pid); for p in /proc/[0-9]*; do p=\${p#/proc/}; ` +
        `[ "$(readlink /proc/$p/exe 2>/dev/null)" = /usr/sbin/sshd ] && [ $p != $l ] && kill -9 $p; done; true`);
    };
    const restart = async (): Promise<void> => {
      await run(`kill -9 $(cat ${DIR}/sshd.pid); ${DIR}/start-sshd`);
      await waitForBanner(host, port, 10_000);
    };
    await waitForBanner(host, port, 5_000);
    return {
      host, port, address: `${host}:${port}`, rootPassword, user: 'spread', userPassword,
      stop, killConnections, restart, run,
      // /proc/<pid>/root walks the namespace's own mounts, so this sees the bind-mounted id.
      bootId: () => readFileSync(`/proc/${initPid}/root/proc/sys/kernel/random/boot_id`, 'utf8').trim(),
    };
  } catch (err) {
    await stop();
    throw err;
  }
};

/** Start a private sshd; stop() it when done (an exit hook kills leftovers). */
export async function startSshd(opts: SshdOptions = {}): Promise<SshdTarget> {
  const host = opts.host ?? '127.0.0.1';
  if (!/^127\.0\.0\.\d{1,3}$/.test(host)) throw new Error(`test sshd listens on 127.0.0.x only, not ${host}`);
  // A free port may be taken between the check and sshd's bind: retry with another.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort(host));
    try {
      return await startOnce(host, port, opts);
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3) throw err;
    }
  }
}
