/**
 * `hepto-agent admit NODE [--identity ID] [--admin-key PATH]` and
 * `hepto-agent admit --all-current`: signs admissions with the admin key
 * (agent/admin/admission.ts) and hands them to the local agent over its
 * control socket, which checks them and spreads them by gossip. Without
 * --identity, NODE's identity is the one the local agent knows for it.
 */
import { loadAdminKey } from '../admin/key';
import { admitCommand, identityText, parseIdentityText, signAdmission, type Admission } from '../admin/admission';
import { request } from '../control/client';
import type { AdmitAnswer, MemberIdentity } from '../control/protocol';
import { loadConfig } from '../../shared/config/load';
import { HeptoError } from '../../shared/errors';
import { fingerprint } from '../net/identity';
import { adminKeyPath } from './admin';
import { configPath, type Command } from './types';

const USAGE = 'admit NODE [--identity ed25519:KEY] [--admin-key PATH] | admit --all-current [--admin-key PATH]';

function usage(message: string): HeptoError {
  return new HeptoError('USAGE', message, { hint: `type hepto-agent ${USAGE}` });
}

export const admit: Command = async (ctx) => {
  const all = ctx.flags.allCurrent === true;
  if (all && (ctx.args.length > 0 || ctx.flags.identity !== undefined)) throw usage('admit --all-current takes no NODE and no --identity');
  if (!all && ctx.args.length !== 1) throw usage(ctx.args.length === 0 ? 'admit needs a NODE name, or --all-current' : `admit takes one NODE, got "${ctx.args.join(' ')}"`);
  const identity = ctx.flags.identity === undefined ? undefined : parseIdentityText(ctx.flags.identity);
  const { key, warnings } = await loadAdminKey(adminKeyPath(ctx));
  for (const w of warnings) ctx.stderr(`warning: ${w}`);
  const { config } = await loadConfig(configPath(ctx));
  const socket = config.control_socket;
  if (config.admin_pub !== null && config.admin_pub !== key.pub) {
    throw new HeptoError('ADMIN_KEY', `the admin key ${adminKeyPath(ctx)} is not the one this machine's admin_pub names`, {
      hint: 'pass --admin-key with the key whose public half is admin_pub (hepto-agent admin pub shows a key\'s public half)',
    });
  }
  const members = (await request(socket, { cmd: 'members' })) as MemberIdentity[];
  let targets: { node: string; idPub: string }[];
  if (all) {
    targets = members.filter((m) => (m.state === 'alive' || m.state === 'suspect') && m.admitted_at === null).map((m) => ({ node: m.name, idPub: m.id_pub }));
    const skipped = members.filter((m) => (m.state === 'alive' || m.state === 'suspect') && m.admitted_at !== null).length;
    if (skipped > 0) ctx.stdout(`${skipped} live member${skipped > 1 ? 's' : ''} already show an admission; left as they are`);
  } else {
    const node = ctx.args[0] as string;
    const known = members.find((m) => m.name === node);
    const idPub = identity ?? known?.id_pub;
    if (!idPub) {
      throw usage(`this agent knows no member "${node}", so admit needs its identity: --identity ed25519:KEY (the refused machine prints it, and so does its status)`);
    }
    if (identity && known && known.id_pub !== identity && (known.state === 'alive' || known.state === 'suspect')) {
      ctx.stderr(`warning: "${node}" is live with identity ${fingerprint(known.id_pub)}; admitting ${fingerprint(identity)} shuts that one out`);
    }
    targets = [{ node, idPub }];
  }
  let refused = 0;
  let at = Date.now();
  for (const t of targets) {
    const a: Admission = signAdmission(key, t.node, t.idPub, at++);
    const answer = (await request(socket, { cmd: 'admit', admission: a })) as AdmitAnswer;
    if (answer.result === 'refused') {
      refused++;
      ctx.stderr(`hepto-agent: the agent refused the admission of ${t.node} (${identityText(t.idPub)}): ${answer.why ?? 'no reason given'}`);
    } else {
      ctx.stdout(`${answer.result === 'already' ? 'already admitted' : 'admitted'}: ${t.node} identity ${fingerprint(t.idPub)}`);
    }
  }
  const done = targets.length - refused;
  ctx.stdout(
    targets.length === 0
      ? 'nothing to admit: every live member already shows an admission'
      : `${done} of ${targets.length} admission${targets.length > 1 ? 's' : ''} handed to the agent, which spreads them to the cluster${refused > 0 ? `; to retry one: ${admitCommand(targets[0]!.node, targets[0]!.idPub)}` : ''}`,
  );
  return refused > 0 ? 1 : 0;
};
