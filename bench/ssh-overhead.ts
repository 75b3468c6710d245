/**
 * Per-script overhead of SshSession against real sshd targets (see
 * test/helpers/sshd.ts; needs root, sshd and unshare). Prints figures and
 * asserts nothing.
 *
 * floor   = one bare ssh2 exec of `true` on a reused connection (TCP no-delay),
 *           i.e. what one-channel-per-script would cost at best; median of 50.
 * session = 200 trivial scripts (`echo ok` inside a ~3 KB rendered-like
 *           script) through dialSsh sessions, sequential within a session,
 *           the sessions in parallel; median of 5 runs. "per script" is wall
 *           time / scripts per session, i.e. the latency one worker sees.
 */
import { Client } from 'ssh2';
import net from 'node:net';
import { dialSsh } from '../src/remote/ssh-dial.js';
import type { Session } from '../src/remote/session.js';
import { outputText as text } from '../src/output.js';
import { startSshd, sshdUnavailable, type SshdTarget } from '../test/helpers/sshd.js';

const RUNS = 5;
const SCRIPTS = 200;
const FLOOR_SAMPLES = 50;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// Roughly what script rendering produces: helpers, exports, then the user's part.
const renderLike = (body: string): string => {
  const helpers = ['REBOOT', 'ERROR', 'MATCH', 'NOMATCH'].map((name) => `${name}() {
    { set +xu; } 2> /dev/null
    local stdin; stdin="$(cat)"
    if [ $# -eq 0 ]; then echo "error: missing argument for ${name}" >&2; return 1; fi
    grep -q -E "$@" <<< "$stdin" && return 0
    echo "grep error: pattern not found, got:" >&2; echo "$stdin" >&2; return 1
}`).join('\n');
  const env = Array.from({ length: 30 }, (_, i) => `export SPREAD_BENCH_VAR_${i}="value number ${i} for the benchmark"`).join('\n');
  const script = `set -eu\ncd "/tmp"\n${helpers}\nexport DEBIAN_FRONTEND=noninteractive\nexport DEBIAN_PRIORITY=critical\n` +
    `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin\n${env}\n\n(\n${body}\n) < /dev/null\n`;
  return script;
};

const bareClient = async (t: SshdTarget): Promise<Client> => {
  const sock = net.connect({ host: t.host, port: t.port });
  await new Promise((r, j) => sock.once('connect', r).once('error', j));
  sock.setNoDelay(true);
  const c = new Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve()).once('error', reject);
    c.connect({ sock, username: 'root', password: t.rootPassword, hostVerifier: () => true });
  });
  return c;
};

const bareExec = (c: Client): Promise<void> =>
  new Promise((resolve, reject) => c.exec('true', (err, ch) => {
    if (err) return reject(err);
    ch.resume();
    ch.stderr.resume();
    ch.on('close', () => resolve());
  }));

const floorMs = async (t: SshdTarget): Promise<number> => {
  const c = await bareClient(t);
  for (let i = 0; i < 5; i++) await bareExec(c);
  const times: number[] = [];
  for (let i = 0; i < FLOOR_SAMPLES; i++) {
    const began = performance.now();
    await bareExec(c);
    times.push(performance.now() - began);
  }
  c.end();
  return median(times);
};

// Wall time per script as one session sees it, median over runs.
const sessionMs = async (t: SshdTarget, sessions: number): Promise<number> => {
  const ss: Session[] = await Promise.all(Array.from({ length: sessions }, () => dialSsh({ address: t.address, password: t.rootPassword })));
  const script = renderLike('echo ok');
  await Promise.all(ss.map((s) => s.exec({ script })));
  const perSession = SCRIPTS / sessions;
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const began = performance.now();
    await Promise.all(ss.map(async (s) => {
      for (let i = 0; i < perSession; i++) {
        const res = await s.exec({ script });
        if (text(res.output) !== 'ok\n') throw new Error(`unexpected output: ${text(res.output)}`);
      }
    }));
    runs.push((performance.now() - began) / perSession);
  }
  await Promise.all(ss.map((s) => s.close()));
  return median(runs);
};

const main = async (): Promise<void> => {
  const why = sshdUnavailable();
  if (why) {
    console.log(`ssh-overhead: skipped (${why})`);
    return;
  }
  const [clean, slow] = await Promise.all([startSshd(), startSshd({ slowLogin: true })]);
  try {
    console.log(`ssh-overhead: rendered script ${renderLike('echo ok').length} bytes, ${SCRIPTS} scripts, median of ${RUNS} runs`);
    console.log('target          floor (bare exec)   1 session / script   4 sessions / script   ratio 1s/floor');
    for (const [name, t] of [['clean', clean], ['slow login', slow]] as const) {
      const floor = await floorMs(t);
      const one = await sessionMs(t, 1);
      const four = await sessionMs(t, 4);
      const ms = (x: number) => `${x.toFixed(2)} ms`.padEnd(21);
      console.log(`${name.padEnd(16)}${ms(floor)}${ms(one)}${ms(four)}${(one / floor).toFixed(2)}`);
    }
  } finally {
    await Promise.all([clean.stop(), slow.stop()]);
  }
};

await main();
