/**
 * Issue 14, attack 3, end to end: the real Agent (gossip on loopback) over
 * the real Supervisor and Podman with the stand-in wesher and k3s. A member
 * holding the key announces, under its own identity and with `created_at: 0`,
 * a node whose overlay IP collides with venus's, and keeps it alive. Before
 * the fix, venus's wesher and k3s were never started again after their next
 * crash or reboot. Now venus keeps its IP: this agent pinned it before it
 * ever heard of the newcomer (agent/runtime/collisions.ts, daemon/name-ledger.ts).
 */
import assert from 'node:assert/strict';
import path from 'path';
import { Agent } from '../../agent/daemon/agent';
import { requestStatus } from '../../agent/control/client';
import { encodeMessage } from '../../agent/gossip/messages';
import { signRecord } from '../../agent/gossip/records';
import { TEST } from '../../agent/gossip/timing';
import { overlayIp } from '../../agent/runtime/overlay-ip';
import type { Supervisor } from '../../agent/runtime/supervisor';
import { systemClock } from '../../shared/clock';
import { memoryLogger } from '../helpers/memory-logger';
import { memberAttacker } from '../helpers/member-attacker';
import { generateIdentity } from '../../agent/net/identity';
import type { StatusDoc } from '../../shared/status';
import { recordFor } from '../unit/gossip/helpers';
import { waitFor } from './harness';
import { podmanSuite } from './suite';
import { freePort } from '../helpers/free-port';

const NET = '10.0.0.0/24';
const problems = async (socket: string): Promise<string[]> => ((await requestStatus(socket)) as StatusDoc).problems;

describe('podman: attack 3, a forged overlay-IP collision (real Agent and Podman, stand-ins)', function () {
  this.timeout(240_000);
  const t = podmanSuite({ perTest: true });
  const fast = { linkCheckMs: 0, backoff: { baseMs: 300, capMs: 1_500, resetAfterMs: 5_000 } };
  let agentLines: string[] = [];
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(agentLines.slice(-60).join('\n'));
  });
  const running = (s: Supervisor, role: string) => () => s.status().containers.find((c) => c.name === `hepto-venus-${role}`)?.state === 'running';

  it("venus keeps its overlay IP: its wesher and k3s start again after a crash and after a reboot, and status names the newcomer's owner", async () => {
    const target = overlayIp('venus', NET);
    let fake = '';
    for (let i = 0; !fake; i++) if (overlayIp(`evil${i}`, NET) === target) fake = `evil${i}`;
    const cfg = t.config('venus', {
      overlay_net: NET,
      gossip_port: await freePort(),
      gossip_listen: ['127.0.0.1'],
      control_socket: path.join(t.storage, 'venus.sock'),
    });
    const boot = async (): Promise<{ agent: Agent; s: Supervisor }> => {
      const s = t.supervisor(cfg, fast);
      const mem = memoryLogger('debug', 'plain');
      agentLines = mem.lines;
      const agent = new Agent({
        config: cfg,
        clock: systemClock,
        logger: mem.logger,
        runtime: s,
        notifier: { ready() {}, status() {}, stopping() {} },
        timing: TEST,
      });
      await agent.start();
      return { agent, s };
    };

    let { agent, s } = await boot();
    // The attacker: a member under its own identity, whose record names the colliding node, created_at 0,
    // re-announced with a rising incarnation so that it stays alive (it answers no probe).
    const id = generateIdentity(Date.now());
    const m = await memberAttacker('mallory', '127.0.0.79', undefined, { identity: id, overlayKey: cfg.overlay_key });
    let inc = 1;
    let attacking = true;
    const announce = async (): Promise<void> => {
      const r = {
        ...recordFor('mallory', '127.0.0.79:1', id),
        created_at: 0,
        containers: { mallory: { wesher: 'running', k3s: 'running' }, [fake]: { wesher: 'running', k3s: 'running' } },
      } as ReturnType<typeof recordFor>;
      await m
        .send({ addresses: [`127.0.0.1:${cfg.gossip_port}`] }, encodeMessage({ t: 'g', u: [{ k: 'a', r: signRecord(r, inc++, id.secretKey) }] }))
        .catch(() => undefined);
    };
    let attack: Promise<void> = Promise.resolve();
    try {
      await waitFor(running(s, 'wesher'), { what: 'venus wesher running', timeoutMs: 60_000 });
      await waitFor(running(s, 'k3s'), { what: 'venus k3s running', timeoutMs: 60_000 });
      attack = (async () => {
        while (attacking) {
          await announce();
          await new Promise((r) => setTimeout(r, 150));
        }
      })();
      const named = await waitFor(async () => (await problems(cfg.control_socket)).find((p) => p.includes('collision') && p.includes(fake)), {
        what: 'the collision in status',
        timeoutMs: 20_000,
      });
      assert.match(named, new RegExp(`node ${fake} of member mallory hashes to ${target.replace(/\./g, '\\.')} like node venus here, which keeps it`));

      // A crash: Podman kills wesher; the supervisor starts it again.
      const before = (await t.h.inspect('hepto-venus-wesher'))!.State.StartedAt;
      await t.h.podman('kill', 'hepto-venus-wesher');
      await waitFor(
        async () => {
          const st = (await t.h.inspect('hepto-venus-wesher'))?.State;
          return st?.Status === 'running' && st.StartedAt !== before;
        },
        { what: 'wesher started again after the crash', timeoutMs: 60_000 },
      );
      await waitFor(running(s, 'k3s'), { what: 'k3s running after the crash', timeoutMs: 60_000 });

      // A reboot: the agent stops, the containers stop, a new agent starts on the same state while the attack goes on.
      await agent.stop();
      await t.h.podman('stop', '-t', '1', 'hepto-venus-k3s', 'hepto-venus-wesher');
      ({ agent, s } = await boot());
      await waitFor(running(s, 'wesher'), { what: 'wesher running after the reboot', timeoutMs: 60_000 });
      await waitFor(running(s, 'k3s'), { what: 'k3s running after the reboot', timeoutMs: 60_000 });
      // The attacker answers no probe: between two of its announcements (every 150 ms) it may be
      // suspect for a moment, and its next incarnation makes it alive again.
      await waitFor(() => agent.gossip.membership.view().some((x) => x.name === 'mallory' && x.state === 'alive'), {
        what: 'the attacker alive in the view',
        timeoutMs: 10_000,
      });
      assert.ok(running(s, 'wesher')() && running(s, 'k3s')(), 'venus runs with the attacker alive beside it');
      assert.ok((await problems(cfg.control_socket)).some((p) => p.includes(`node ${fake} of member mallory`)));
    } finally {
      attacking = false;
      await attack;
      await m.stop();
      await agent.stop();
    }
  });
});
