/**
 * memberlist's figures as measured on these machines (shared/reference/
 * memberlist-bench.md: DefaultLANConfig, a 32-byte key so AES-256-GCM is on,
 * N members in one Go process on 127.0.0.1, every member joining through
 * member 0, 3 fresh clusters each). Used when memberlist cannot be run in the
 * same invocation.
 */
import type { Spread } from './stats';

export type Metric = 'joinMs' | 'crashFirstMs' | 'crashAllMs' | 'leaveAllMs' | 'bytesPerSecPerMember' | 'memPerMemberKiB';
/** Figures only a same-invocation memberlist run gives (the reference has none). */
export type MeasuredOnlyMetric = 'heapPerMemberKiB' | 'falseDeaths';

function s(min: number, median: number, max: number): Spread {
  return { min, median, max, count: 3 };
}

export const MEMBERLIST_REFERENCE: Readonly<Record<number, Record<Metric, Spread>>> = Object.freeze({
  10: {
    joinMs: s(412, 412, 413),
    crashFirstMs: s(5491, 6485, 6489),
    crashAllMs: s(5685, 6683, 6894),
    leaveAllMs: s(391, 411, 606),
    bytesPerSecPerMember: s(176, 176, 176),
    memPerMemberKiB: s(585, 604, 608),
  },
  50: {
    joinMs: s(1057, 1228, 79679),
    crashFirstMs: s(9636, 10014, 10468),
    crashAllMs: s(9851, 10222, 10675),
    leaveAllMs: s(610, 792, 801),
    bytesPerSecPerMember: s(179, 179, 179),
    memPerMemberKiB: s(305, 341, 383),
  },
  100: {
    joinMs: s(2211, 2231, 2666),
    crashFirstMs: s(10252, 10671, 10698),
    crashAllMs: s(10656, 10914, 11123),
    leaveAllMs: s(615, 782, 800),
    bytesPerSecPerMember: s(175, 175, 176),
    memPerMemberKiB: s(333, 339, 356),
  },
  200: {
    joinMs: s(5131, 6152, 6279),
    crashFirstMs: s(10841, 10954, 11047),
    crashAllMs: s(11257, 11437, 11644),
    leaveAllMs: s(700, 797, 809),
    bytesPerSecPerMember: s(176, 176, 176),
    memPerMemberKiB: s(412, 432, 469),
  },
});

export const REFERENCE_SOURCE =
  'shared/reference/memberlist-bench.md (memberlist 0.2.2, DefaultLANConfig, encryption on, measured earlier on this kind of machine)';
