/**
 * `hepto-agent rotate-keys [--switch-in 60s] [--grace 7d] [--admin-key PATH]`:
 * makes a new overlay key and a new k3s agent token, seals them to every
 * admitted member the local agent knows (live or not), has the admin key sign
 * each box (agent/admin/rotation.ts), and hands the boxes to the local agent,
 * which spreads them. Every member moves to the new keys at the same moment
 * (`--switch-in` from now: wesher holds a single key); until the end of the
 * grace, members still take the old overlay key from admitted identities, so
 * one that was off gets its box when it returns. The keys themselves are never
 * printed, and no process other than this one ever sees them in the clear.
 */
import { generateKey } from '../../shared/keys';
import { HeptoError } from '../../shared/errors';
import { newSchedule, signRotationBox, type RotatedKeys } from '../admin/rotation';
import { request } from '../control/client';
import type { AdmitAnswer } from '../control/protocol';
import { fingerprint } from '../net/identity';
import { adminSession } from './admit';
import { parseDuration } from './invite';
import { noAdminPubError, usageError, type Command } from './types';

const USAGE = 'rotate-keys [--switch-in 60s] [--grace 7d] [--admin-key PATH]';
const SWITCH_RANGE = { min: 5_000, max: 86_400_000 };
const GRACE_RANGE = { min: 10_000, max: 90 * 86_400_000 };

function within(ms: number, flag: string, r: { min: number; max: number }, words: string): number {
  if (ms < r.min || ms > r.max) throw usageError(`${flag} must be ${words}`, USAGE);
  return ms;
}

export const rotateKeys: Command = async (ctx) => {
  if (ctx.args.length > 0) throw usageError(`rotate-keys takes no arguments, got "${ctx.args.join(' ')}"`, USAGE);
  const switchIn = within(
    parseDuration(ctx.flags.switchIn ?? '60s', '--switch-in'),
    '--switch-in',
    SWITCH_RANGE,
    'between 5s and 1d: long enough for the keys to reach every live member',
  );
  const grace = within(parseDuration(ctx.flags.grace ?? '7d', '--grace'), '--grace', GRACE_RANGE, 'between 10s and 90d');
  const { key, socket, adminPub, members } = await adminSession(ctx);
  if (adminPub === null) throw noAdminPubError('so no agent could check a rotation');
  const admitted = members.filter((m) => m.admitted_at !== null);
  const unadmitted = members.filter((m) => m.admitted_at === null && (m.state === 'alive' || m.state === 'suspect'));
  for (const m of unadmitted)
    ctx.stderr(`warning: "${m.name}" shows no admission, so it gets no new keys: admit it (hepto-agent admit ${m.name}), then rotate again`);
  if (admitted.length === 0)
    throw new HeptoError('USAGE', 'the local agent knows no admitted member: nothing to rotate keys for', {
      hint: 'admit the members first (hepto-agent admit --all-current)',
    });
  const keys: RotatedKeys = { overlay_key: generateKey(), agent_key: generateKey() };
  const schedule = newSchedule(Date.now(), switchIn, grace);
  let refused = 0;
  for (const m of admitted) {
    const box = signRotationBox(key, schedule, m.name, m.id_pub, keys);
    if (!box) {
      refused++;
      ctx.stderr(`hepto-agent: "${m.name}" has an identity key with no X25519 form (${fingerprint(m.id_pub)}): it gets no box`);
      continue;
    }
    const answer = (await request(socket, { cmd: 'rotate', box })) as AdmitAnswer;
    if (answer.result === 'refused') {
      refused++;
      ctx.stderr(`hepto-agent: the agent refused the box of ${m.name}: ${answer.why ?? 'no reason given'}`);
    }
  }
  keys.overlay_key = '';
  keys.agent_key = '';
  const sealed = admitted.length - refused;
  const away = admitted.filter((m) => m.state !== 'alive' && m.state !== 'suspect').map((m) => `${m.name} (${m.state})`);
  ctx.stdout(
    `rotation ${schedule.id}: new overlay key and k3s agent token sealed to ${sealed} of ${admitted.length} admitted member${admitted.length > 1 ? 's' : ''}`,
  );
  if (away.length > 0) ctx.stdout(`not live now, they get their keys when they return before the end of the grace: ${away.join(', ')}`);
  ctx.stdout(
    `every member switches at ${new Date(schedule.switch_at).toISOString()}; the old overlay key is taken from admitted members until ${new Date(schedule.grace_until).toISOString()}`,
  );
  ctx.stdout('hepto-agent status shows, on every member, which ones still use the old keys');
  return refused > 0 ? 1 : 0;
};
