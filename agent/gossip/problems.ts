/**
 * What status shows under `problems`: one sentence each, saying what to do.
 */
import { fingerprint } from '../net/identity';
import { joinProblem } from './join';
import { claimProblems } from './claims';
import type { State } from './state';
import { selfEntry } from './state';
import { MAX_HEALTH } from './probe';

function portOf(address: string | undefined): string {
  const m = /:(\d+)$/.exec(address ?? '');
  return m ? (m[1] as string) : 'the gossip port';
}

/** `now`: the membership's internal time (the clock its timers and claims use). */
export function describeProblems(s: State, now: number): string[] {
  const out: string[] = [];
  for (const c of s.conflicts.values()) {
    out.push(
      `node name "${c.name}" is claimed by two machines (identity ${fingerprint(c.known.idPub)} at ${c.known.addr}, and ${fingerprint(c.other.idPub)} at ${c.other.addr}): rename one of them`,
    );
  }
  out.push(...claimProblems(s, now));
  const j = joinProblem(s);
  if (j) out.push(j);
  if (s.probe.health >= MAX_HEALTH / 2) {
    const port = portOf(selfEntry(s).signed.record.addresses[0]);
    out.push(
      `this agent's probes keep failing (local health ${s.probe.health}/${MAX_HEALTH}), so it probes ${1 + s.probe.health}× slower: check its CPU load and its network (packet loss, a firewall dropping port ${port})`,
    );
  }
  return out;
}
