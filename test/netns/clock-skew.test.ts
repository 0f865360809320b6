/**
 * One host's clock 60 s ahead, another's 60 s behind. Namespaces share the
 * kernel clock, so the skew is given to those agents' processes with
 * libfaketime (LD_PRELOAD + FAKETIME, monotonic clock left alone, as a wrong
 * wall clock on a real machine would be). The agent may tolerate the skew (the
 * cluster converges and stays healthy) or refuse it with a clear message;
 * what it must never do is split silently.
 */
import { strict as assert } from 'assert';
import { existsSync, readdirSync } from 'fs';
import type { StatusDoc } from '../../shared/status';
import { waitFor } from '../helpers/agent-cluster';
import { everyone, observe, useNetns, type HostAgent } from './cluster';

const SKEW_S = 60;
const CLOCK_WORDS = /clock|skew|time/i;

/** Debian's libfaketime (package faketime), whatever the architecture directory. */
function findLibfaketime(): string {
  const candidates = ['/usr/lib/faketime/libfaketime.so.1'];
  for (const d of existsSync('/usr/lib') ? readdirSync('/usr/lib') : []) candidates.push(`/usr/lib/${d}/faketime/libfaketime.so.1`);
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('libfaketime is missing; the clock-skew scenario needs it: apt-get install faketime');
  return found;
}

function skewEnv(lib: string, offsetS: number): Record<string, string> {
  return { LD_PRELOAD: lib, FAKETIME: `${offsetS >= 0 ? '+' : ''}${offsetS}s`, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

describe('netns: a host with a skewed clock', function () {
  this.timeout(90000);
  const env = useNetns(4);

  let lib = '';
  before(function () {
    lib = findLibfaketime();
  });

  it(`±${SKEW_S} s on two hosts: tolerated (converges and stays healthy) or refused with a clear message, never a silent split`, async () => {
    const { topo, cluster } = env;
    const [h1, h2, h3, h4] = topo.hosts;
    const alpha = cluster.on(h1, 'alpha');
    const beta = cluster.on(h2, 'beta', { anchors: [h1] });
    const ahead = cluster.on(h3, 'ahead', { anchors: [h1], env: skewEnv(lib, SKEW_S) });
    const behind = cluster.on(h4, 'behind', { anchors: [h1, h2], env: skewEnv(lib, -SKEW_S) });
    const agents: HostAgent[] = [alpha, beta, ahead, behind];
    await cluster.boot(agents);

    // The skew really reached the agents: their own start time is off by the offset.
    for (const [a, off] of [
      [ahead, SKEW_S],
      [behind, -SKEW_S],
      [alpha, 0],
    ] as const) {
      const s = await waitFor(`${a.name} to answer status`, () => cluster.status(a), 20000);
      const drift = (Date.parse(s.started_at) - Date.now()) / 1000;
      assert.ok(Math.abs(drift - off) < 15, `${a.name}'s clock is off by ${drift.toFixed(1)} s, expected about ${off} s`);
    }

    const clockProblems = (s: StatusDoc): string[] => s.problems.filter((p) => CLOCK_WORDS.test(p));
    let outcome: 'tolerated' | 'refused' | undefined;
    let statuses: StatusDoc[] = [];
    try {
      outcome = await waitFor(
        'the cluster to converge, or to report the skew',
        async () => {
          statuses = await Promise.all(agents.map((a) => cluster.status(a)));
          const converged = statuses.every((s) => agents.every((b) => s.members.find((m) => m.name === b.name)?.state === 'alive'));
          if (converged) return 'tolerated' as const;
          if (statuses.some((s) => clockProblems(s).length > 0)) return 'refused' as const;
          return undefined;
        },
        40000,
        250,
      );
    } catch (e) {
      assert.fail(
        `silent split: neither converged nor reported the skew: ${(e as Error).message}\n${JSON.stringify(
          statuses.map((s) => ({ node: s.node, members: s.members.map((m) => `${m.name}:${m.state}`), problems: s.problems })),
          null,
          1,
        )}`,
      );
    }
    console.log(`      [netns] clock skew ±${SKEW_S} s: ${outcome}`);

    if (outcome === 'tolerated') {
      const { sightings, errors } = await observe(cluster, agents, 10000, 500);
      assert.deepEqual(errors, []);
      assert.deepEqual(sightings, [], 'the cluster stays healthy with the skew');
      for (const a of agents) {
        const s = await cluster.statusCli(a);
        assert.deepEqual(s.members.map((m) => `${m.name}:${m.state}`).sort(), agents.map((b) => `${b.name}:alive`).sort(), `${a.name} sees everyone alive`);
      }
      // The skew does not leak into what correct hosts report: last_seen of the skewed members is recent, not a minute off.
      for (const a of [alpha, beta]) {
        const s = await cluster.status(a);
        for (const m of s.members) {
          const age = (Date.now() - Date.parse(m.last_seen)) / 1000;
          assert.ok(age > -5 && age < 30, `${a.name} reports ${m.name} last seen ${age.toFixed(1)} s ago`);
        }
      }
    } else {
      // Refused: the skewed hosts themselves say so, naming the clock, and so does someone on the healthy side.
      for (const a of [ahead, behind]) {
        const s = await cluster.statusCli(a);
        assert.ok(clockProblems(s).length > 0, `${a.name} must explain it is refused for its clock: ${JSON.stringify(s.problems)}`);
      }
      const healthy = await Promise.all([alpha, beta].map((a) => cluster.statusCli(a)));
      assert.ok(
        healthy.some((s) => clockProblems(s).length > 0),
        `the healthy side must report the refused skewed peers: ${JSON.stringify(healthy.map((s) => s.problems))}`,
      );
      assert.deepEqual(
        everyone([alpha, beta], 'alive'),
        Object.fromEntries(healthy[0].members.filter((m) => m.name === 'alpha' || m.name === 'beta').map((m) => [m.name, m.state])),
      );
    }
  });
});
