/**
 * Self-heal benchmark (issue 3). In one run, on the same busybox stand-in:
 * - the agent: a Supervisor restarts its wesher stand-in after a crash;
 * - Podman's own `--restart=always` restarts an identical container.
 * A crash is `kill -9` of the container's main PID from the host (`podman
 * kill` would switch Podman's own policy off). Latency runs from the kill to
 * the container running again, polled through the API the same way for
 * both, crashes interleaved. Each crash comes after the container has been
 * up longer than the agent's backoff reset (set to 1 s here, 60 s by
 * default), so each is a "first death" that the agent restarts at once;
 * repeated quick deaths would back off (Podman's own would not).
 * Then the idle RSS and CPU of a process running only the supervisor for
 * one node. Prints a table and writes bench/results/selfheal-<date>.json.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import type Dockerode from 'dockerode';
import { systemClock } from '../shared/clock';
import { createLogger } from '../shared/log';
import { Supervisor } from '../agent/runtime/supervisor';
import { PodmanHarness, STAND_INS, waitFor } from '../test/podman/harness';
import { testConfig } from '../test/unit/runtime/fixtures';
import { ratio, spread, type Spread } from './lib/stats';

const REPO = path.resolve(__dirname, '../..');
const RESET_AFTER_MS = 1_000;
const POLL_MS = 5;

function say(line: string): void {
  process.stdout.write(line + '\n');
}

async function state(docker: Dockerode, name: string): Promise<{ status: string; pid: number; startedAt: string }> {
  const i = await docker.getContainer(name).inspect();
  return { status: i.State.Status, pid: i.State.Pid, startedAt: i.State.StartedAt };
}

/** kill -9 of the main PID; ms until the container runs again (new StartedAt). */
async function crashOnce(docker: Dockerode, name: string): Promise<number> {
  const before = await state(docker, name);
  if (before.status !== 'running' || before.pid <= 0) throw new Error(`${name} is not running before the crash`);
  const t0 = performance.now();
  process.kill(before.pid, 'SIGKILL');
  for (;;) {
    const s = await state(docker, name).catch(() => null);
    if (s && s.status === 'running' && s.startedAt !== before.startedAt) return performance.now() - t0;
    if (performance.now() - t0 > 30_000) throw new Error(`${name} did not come back within 30 s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function upFor(docker: Dockerode, name: string, ms: number): Promise<void> {
  await waitFor(
    async () => {
      const s = await state(docker, name);
      return s.status === 'running' && Date.now() - Date.parse(s.startedAt) >= ms;
    },
    { what: `${name} up for ${ms} ms`, timeoutMs: 30_000 },
  );
}

function procStat(pid: number): { cpuTicks: number; rssKb: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime + stime
  const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuTicks, rssKb: rss ? Number(rss[1]) : NaN };
}

async function idleAgent(h: PodmanHarness, storage: string, windowMs: number): Promise<{ rssMb: number; cpuPercent: number; windowMs: number }> {
  const cfgFile = path.join(storage, 'idle-agent.json');
  fs.writeFileSync(
    cfgFile,
    JSON.stringify(
      testConfig({
        node: 'benchidle',
        master: 'benchidle',
        ip: [],
        gw: [],
        storage_base: storage,
        podman_socket: h.socket,
        images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
      }),
    ),
  );
  const child = spawn(process.execPath, [path.join(__dirname, 'selfheal-agent.js'), cfgFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), { what: 'idle agent supervising its node', timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 2_000)); // let start-up work settle
    const a = procStat(child.pid!);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const b = procStat(child.pid!);
    const elapsed = Date.now() - t0;
    const hz = 100; // USER_HZ on Linux
    return {
      rssMb: Math.round((b.rssKb / 1024) * 10) / 10,
      cpuPercent: Math.round((((b.cpuTicks - a.cpuTicks) / hz) * 1000 * 100 * 100) / elapsed) / 100,
      windowMs: elapsed,
    };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
}

function fmt(s: Spread | null): string {
  return s ? `${s.median.toFixed(0)} ms (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)}, n=${s.count})` : 'n/a';
}

export async function main(opts: { quick?: boolean } = {}): Promise<void> {
  const crashes = opts.quick ? 5 : 20;
  const h = await PodmanHarness.start();
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-selfheal-'));
  const docker = h.docker();
  const sup = new Supervisor({
    config: testConfig({
      node: 'benchheal',
      master: 'benchheal',
      ip: [],
      gw: [],
      storage_base: storage,
      podman_socket: h.socket,
      images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
    }),
    clock: systemClock,
    logger: createLogger({ level: 'warn' }),
    backoff: { resetAfterMs: RESET_AFTER_MS },
  });
  const agentName = 'hepto-benchheal-wesher';
  const podmanName = 'bench-podman-restart-always';
  try {
    sup.setCluster({ members: [] });
    await sup.start();
    await waitFor(() => sup.status().containers.every((c) => c.state === 'running'), { what: 'agent containers running', timeoutMs: 30_000 });
    // Podman's own policy on the same stand-in, same network mode and ulimits.
    await h.podman(
      'run',
      '-d',
      '--name',
      podmanName,
      '--restart=always',
      '--network',
      'host',
      '--cap-add',
      'NET_ADMIN',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
      STAND_INS.wesher,
    );

    const agentMs: number[] = [];
    const podmanMs: number[] = [];
    for (let i = 0; i < crashes; i++) {
      await upFor(docker, agentName, RESET_AFTER_MS + 200);
      agentMs.push(await crashOnce(docker, agentName));
      await upFor(docker, podmanName, RESET_AFTER_MS + 200);
      podmanMs.push(await crashOnce(docker, podmanName));
      say(`  crash ${i + 1}/${crashes}: agent ${agentMs[i].toFixed(0)} ms, podman --restart=always ${podmanMs[i].toFixed(0)} ms`);
    }
    const agent = spread(agentMs);
    const own = spread(podmanMs);
    const r = ratio(agent, own);
    const restarts = sup.status().containers.find((c) => c.name === agentName)?.restarts ?? 0;
    await sup.stop();
    await h.podman('rm', '-f', '-t', '0', podmanName);
    await h.removeAll();

    const idle = await idleAgent(h, storage, opts.quick ? 10_000 : 30_000);

    say('');
    say('| self-heal after kill -9 (polled via the API) | median (min, max, n) |');
    say('|---|---|');
    say(`| hepto supervisor (exit watch + events, backoff on) | ${fmt(agent)} |`);
    say(`| Podman --restart=always (no backoff)         | ${fmt(own)} |`);
    say(`| ratio (agent / Podman), target <= 1.2        | ${r === null ? 'n/a' : r.toFixed(2)} |`);
    say(`| idle supervisor process, one node            | RSS ${idle.rssMb} MB, CPU ${idle.cpuPercent}% over ${(idle.windowMs / 1000).toFixed(0)} s |`);
    say(`agent restarts counted: ${restarts}/${crashes}`);

    const outDir = path.join(REPO, 'bench/results');
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `selfheal-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify(
        {
          kind: 'hepto-selfheal-bench',
          version: 1,
          date: new Date().toISOString(),
          machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadavg: os.loadavg() },
          method: {
            crash: 'kill -9 of the container main PID from the host',
            poll: `Docker-compatible inspect every ${POLL_MS} ms until running with a new StartedAt`,
            image: STAND_INS.wesher,
            agentBackoffResetAfterMs: RESET_AFTER_MS,
            uptimeBeforeEachCrashMs: RESET_AFTER_MS + 200,
            interleaved: true,
            quick: !!opts.quick,
          },
          agentMs,
          podmanMs,
          agent,
          podman: own,
          ratio: r,
          idleSupervisor: idle,
        },
        null,
        2,
      ) + '\n',
    );
    say(`wrote ${path.relative(REPO, file)}`);
  } finally {
    await sup.stop().catch(() => undefined);
    await h.close().catch(() => undefined);
    fs.rmSync(storage, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main({ quick: process.argv.includes('--quick') }).catch((e) => {
    process.stderr.write(`selfheal bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
