/**
 * What one script costs the target through the remote agent, without SSH:
 * the agent (src/remote/ssh-agent.ts) runs under a local `bash -s` fed
 * through a pipe, as sshd would feed it, and runs 200 scripts shaped like a
 * rendered trivial task (helpers, ~15 exports, `echo ok` in its subshell),
 * one after another on 1 agent, then on 4 agents at once. Prints the wall
 * time per script and the whole machine's CPU time per script (from
 * /proc/stat: the agent's forks and execs, the scripts, and this driver),
 * next to a bare `/bin/bash -s` per script (the least any fresh shell per
 * script costs). Asserts nothing. Usage: node dist/bench/agent-cost.js [scripts]
 */
import { spawn, spawnSync } from 'node:child_process';
import { AgentParser, agentScript } from '../src/remote/ssh-agent.js';
import { renderScript } from '../src/remote/script.js';
import { machineBusyMs } from './machine-cpu.js';

const SCRIPTS = Number(process.argv[2] ?? 200);
const TOKEN = 'spread-agent-bench0123456789abcdef';

const env = Object.fromEntries(['JOB', 'PROJECT', 'PATH', 'BACKEND', 'SYSTEM', 'SUITE', 'TASK', 'VARIANT', 'SAMPLE', 'REBOOT'].map((k) => [`SPREAD_${k}`, `value of ${k}`]));
const script = Buffer.from(renderScript({ dir: '/tmp', env: Object.entries(env), script: 'echo ok' }));

/** Runs SCRIPTS scripts on one agent; resolves with the wall time per script. */
async function oneAgent(): Promise<number> {
  const bash = spawn('/bin/bash', ['-s'], { env: { PATH: '/usr/bin:/bin', HOME: '/tmp' }, stdio: ['pipe', 'pipe', 'inherit'] });
  let wake: ((m: string) => void) | undefined;
  let out = '';
  const parser = new AgentParser(TOKEN, (m) => { if (m.kind === 'R' || m.kind === 'E') wake?.(`${m.kind} ${m.values[1] ?? ''}`); }, (_n, b) => { out += b.toString(); });
  bash.stdout.on('data', (d: Buffer) => parser.push(d));
  const next = () => new Promise<string>((resolve) => (wake = resolve));
  let marker = next();
  bash.stdin.write(agentScript(TOKEN));
  await marker;
  const started = performance.now();
  for (let i = 0; i < SCRIPTS; i++) {
    marker = next();
    bash.stdin.write(Buffer.concat([Buffer.from(`${script.length}\n`), script]));
    const m = await marker;
    if (m !== 'E 0' || !out.endsWith('ok\n')) throw new Error(`script ${i}: ${m}: ${out}`);
    out = '';
  }
  const perScript = (performance.now() - started) / SCRIPTS;
  bash.stdin.end();
  await new Promise((resolve) => bash.on('close', resolve));
  return perScript;
}

async function measure(agents: number): Promise<string> {
  const busy = machineBusyMs();
  const started = performance.now();
  const perScript = await Promise.all(Array.from({ length: agents }, oneAgent));
  const wall = performance.now() - started;
  const cpu = (machineBusyMs() - busy) / (SCRIPTS * agents);
  return `${agents} agent${agents > 1 ? 's' : ' '}: ${perScript[0]!.toFixed(2)} ms per script on each, ${wall.toFixed(0)} ms for all ${SCRIPTS * agents}; machine CPU ${cpu.toFixed(2)} ms per script`;
}

function bare(): string {
  const busy = machineBusyMs();
  const started = performance.now();
  for (let i = 0; i < SCRIPTS; i++) spawnSync('/bin/bash', ['-s'], { input: script, env: { PATH: '/usr/bin:/bin', HOME: '/tmp' } });
  const wall = (performance.now() - started) / SCRIPTS;
  return `bare /bin/bash -s per script (spawned by node): ${wall.toFixed(2)} ms, machine CPU ${((machineBusyMs() - busy) / SCRIPTS).toFixed(2)} ms per script`;
}

console.log(`remote agent cost on this machine, ${SCRIPTS} scripts of ${script.length} bytes each`);
console.log(await measure(1));
console.log(await measure(4));
console.log(bare());
