/**
 * The Agent, whole (identity, state files, control socket, membership,
 * status), over the in-memory network with a manual clock: its gossip moves
 * only when the test advances time (issue 17). Path MTUs come from a stub
 * instead of ping.
 */
import { strict as assert } from 'assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { Agent } from '../../../agent/daemon/agent';
import { NoRuntime } from '../../../agent/daemon/runtime-seam';
import { TEST } from '../../../agent/gossip/timing';
import { ManualClock } from '../../../shared/clock';
import type { HeptoConfig } from '../../../shared/config/types';
import { validateConfig } from '../../../shared/config/validate';
import { memoryLogger } from '../../helpers/memory-logger';
import type { StatusDoc } from '../../../shared/status';
import { CLUSTER_KEY, OVERLAY_KEY } from '../../helpers/agent-cluster';
import { MemoryNetwork } from '../../helpers/memory-transport';
import { stepClock } from '../../helpers/virtual-time';

const PORT = 7947;
const LATENCY_MS = 5;

interface Running {
  name: string;
  agent: Agent;
  lines: string[];
  ready: number;
  statusLines: string[];
}

function config(dir: string, name: string, host: string, anchors: string[]): HeptoConfig {
  const { config: c, problems } = validateConfig({
    node: name,
    master: 'alpha',
    overlay_key: OVERLAY_KEY,
    cluster_key: CLUSTER_KEY,
    runtime: 'none',
    anchors,
    gossip_listen: [host],
    gossip_port: PORT,
    storage_base: path.join(dir, name, 'srv'),
    control_socket: path.join(dir, `${name}.sock`),
    metrics_listen: '',
  });
  assert.deepEqual(problems, []);
  return c!;
}

describe('Agent over the in-memory network, manual clock', function () {
  let dir: string;
  let clock: ManualClock;
  let net: MemoryNetwork;
  const agents: Running[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hepto-agent-unit-'));
    clock = new ManualClock();
    net = new MemoryNetwork({ clock, latencyMs: LATENCY_MS });
  });
  afterEach(async () => {
    for (const r of agents.splice(0)) await stopWithin(r, 5_000);
    rmSync(dir, { recursive: true, force: true });
  });

  function make(name: string, host: string, anchors: string[]): Running {
    const { logger, lines } = memoryLogger('debug', 'plain');
    const r: Running = { name, agent: undefined as unknown as Agent, lines, ready: 0, statusLines: [] };
    r.agent = new Agent({
      config: config(dir, name, host, anchors),
      clock,
      logger,
      runtime: new NoRuntime(),
      notifier: { ready: () => r.ready++, status: (s) => r.statusLines.push(s), stopping: () => undefined },
      timing: TEST,
      transport: ({ events, identity, name: n }) => net.transport({ name: n, events, idPub: identity.idPub, addresses: [`${host}:${PORT}`] }),
      measurePath: async () => ({ mtu: 1500, how: 'first', probes: 1, bytes: 1500 }),
    });
    agents.push(r);
    return r;
  }

  /** Advances virtual time in small steps, letting promise chains (sends, file writes) run between them. */
  const run = (ms: number, until?: () => boolean): Promise<boolean> => stepClock(clock, LATENCY_MS, ms, until);

  /**
   * For what also waits on the disk (a state file's write, fsync and rename):
   * each step of virtual time also gives real time, up to `realMs` in all.
   */
  async function runWithDisk(realMs: number, until: () => boolean): Promise<boolean> {
    const deadline = Date.now() + realMs;
    while (Date.now() < deadline) {
      if (until()) return true;
      clock.advance(LATENCY_MS);
      await new Promise((r) => setTimeout(r, LATENCY_MS));
    }
    return until();
  }

  /** stop() gives its leave announcements time on the injected clock: advance it meanwhile. */
  async function stopWithin(r: Running, ms: number): Promise<void> {
    let done = false;
    const stopping = r.agent.stop({ leave: true }).then(() => (done = true));
    await run(ms, () => done);
    await stopping;
  }

  const stateIn = (doc: StatusDoc, name: string): string | undefined => doc.members.find((m) => m.name === name)?.state;

  it('two agents meet through the anchor only as virtual time passes, and status, the notifier and the log say so', async () => {
    const alpha = make('alpha', '127.0.0.1', []);
    const beta = make('beta', '127.0.0.2', [`127.0.0.1:${PORT}`]);
    await alpha.agent.start();
    await beta.agent.start();
    assert.equal(alpha.ready, 1);
    assert.equal(beta.ready, 1);
    assert.equal(stateIn(alpha.agent.status(), 'beta'), undefined, 'alpha knew beta before any virtual time passed');
    const both = (): boolean => stateIn(alpha.agent.status(), 'beta') === 'alive' && stateIn(beta.agent.status(), 'alpha') === 'alive';
    assert.ok(await run(10_000, both), `alpha sees beta ${stateIn(alpha.agent.status(), 'beta')}, beta sees alpha ${stateIn(beta.agent.status(), 'alpha')}`);
    // The systemd status line counts live members once the view refresh ran (on the clock too).
    assert.ok(await run(5_000, () => /^mesh 2\/2 alive/.test(beta.statusLines.at(-1) ?? '')), `beta's last status line: ${beta.statusLines.at(-1)}`);
    assert.ok(
      beta.lines.some((l) => l.includes('alpha') && l.includes('alive')),
      'beta logged nothing about alpha coming alive',
    );
  });

  it('known peers are saved on the clock; a peer that leaves is seen left and dropped from them', async () => {
    const alpha = make('alpha', '127.0.0.1', []);
    const beta = make('beta', '127.0.0.2', [`127.0.0.1:${PORT}`]);
    await alpha.agent.start();
    await beta.agent.start();
    assert.ok(await run(10_000, () => stateIn(alpha.agent.status(), 'beta') === 'alive'));
    const peers = path.join(dir, 'alpha', 'srv', 'alpha', 'peers.json');
    const known = (): string[] =>
      existsSync(peers) ? (JSON.parse(readFileSync(peers, 'utf8')) as { peers: { name: string }[] }).peers.map((p) => p.name) : [];
    // Saved two seconds of virtual time after a member event (Agent.schedulePersist), then written for real.
    assert.ok(await runWithDisk(10_000, () => known().includes('beta')), `no beta in ${peers}: ${JSON.stringify(known())}`);
    agents.splice(agents.indexOf(beta), 1);
    await stopWithin(beta, 5_000);
    assert.ok(await run(5_000, () => stateIn(alpha.agent.status(), 'beta') === 'left'), `alpha sees beta ${stateIn(alpha.agent.status(), 'beta')}`);
    // A member that left is not one to dial at the next start.
    assert.ok(await runWithDisk(10_000, () => !known().includes('beta')), `beta still in ${peers}`);
  });
});
