/**
 * `hepto-agent admit NODE [--identity ID] [--admin-key PATH]`,
 * `hepto-agent admit --all-current` and `hepto-agent remove NODE`: signs admissions (removals) with the admin key
 * (agent/admin/admission.ts) and hands them to the local agent over its
 * control socket, which checks them and spreads them by gossip. Without
 * --identity, NODE's identity is the one the local agent knows for it.
 */
import { loadAdminKey, type AdminKey } from '../admin/key';
import { admitCommand, identityText, parseIdentityText, signAdmission, signRemoval, type Admission } from '../admin/admission';
import { request } from '../control/client';
import type { AdmitAnswer, MemberIdentity } from '../control/protocol';
import { loadConfig } from '../../shared/config/load';
import { HeptoError } from '../../shared/errors';
import { fingerprint } from '../net/identity';
import { adminKeyPath } from './admin';
import { configPath, noAdminPubError, usageError, type Command, type CommandContext } from './types';

const USAGE = 'admit NODE [--identity ed25519:KEY] [--admin-key PATH] | admit --all-current [--admin-key PATH]';

function usage(message: string): HeptoError {
  return usageError(message, USAGE);
}

/** The admin key (checked against this machine's admin_pub), the local agent's socket and the members it knows. */
export async function adminSession(
  ctx: CommandContext,
): Promise<{ key: AdminKey; socket: string; adminPub: string | null; self: string; members: MemberIdentity[] }> {
  const { key, warnings } = await loadAdminKey(adminKeyPath(ctx));
  for (const w of warnings) ctx.stderr(`warning: ${w}`);
  const { config } = await loadConfig(configPath(ctx));
  if (config.admin_pub !== null && config.admin_pub !== key.pub) {
    throw new HeptoError('ADMIN_KEY', `the admin key ${adminKeyPath(ctx)} is not the one this machine's admin_pub names`, {
      hint: "pass --admin-key with the key whose public half is admin_pub (hepto-agent admin pub shows a key's public half)",
    });
  }
  const members = (await request(config.control_socket, { cmd: 'members' })) as MemberIdentity[];
  return { key, socket: config.control_socket, adminPub: config.admin_pub, self: config.node, members };
}

export const admit: Command = async (ctx) => {
  const all = ctx.flags.allCurrent === true;
  if (all && (ctx.args.length > 0 || ctx.flags.identity !== undefined)) throw usage('admit --all-current takes no NODE and no --identity');
  if (!all && ctx.args.length !== 1)
    throw usage(ctx.args.length === 0 ? 'admit needs a NODE name, or --all-current' : `admit takes one NODE, got "${ctx.args.join(' ')}"`);
  const identity = ctx.flags.identity === undefined ? undefined : parseIdentityText(ctx.flags.identity);
  const { key, socket, members } = await adminSession(ctx);
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
      throw usage(
        `this agent knows no member "${node}", so admit needs its identity: --identity ed25519:KEY (the refused machine prints it, and so does its status)`,
      );
    }
    if (!identity && known && known.state !== 'alive' && known.state !== 'suspect') {
      throw usage(
        `"${node}" is ${known.state}: its last known identity is ${fingerprint(known.id_pub)}, which a reinstalled machine no longer has; give the identity to admit with --identity ed25519:KEY (the machine prints it; ${identityText(known.id_pub)} to admit the last known one again)`,
      );
    }
    if (identity && known && known.id_pub !== identity && (known.state === 'alive' || known.state === 'suspect')) {
      ctx.stderr(`warning: "${node}" is live with identity ${fingerprint(known.id_pub)}; admitting ${fingerprint(identity)} shuts that one out`);
    }
    if (known && known.id_pub === idPub && known.admitted_at !== null && (known.state === 'alive' || known.state === 'suspect')) {
      // Signing again would only re-spread it and make the member re-sign its record.
      ctx.stdout(`already admitted: ${node} identity ${fingerprint(idPub)} (since ${new Date(known.admitted_at).toISOString()})`);
      return 0;
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

const REMOVE_USAGE = 'remove NODE [--identity ed25519:KEY] [--admin-key PATH]';

/**
 * `hepto-agent remove NODE [--identity ID] [--admin-key PATH]`: signs a
 * removal of NODE's identity (default: the one the local agent knows, in any
 * state) and hands it to the local agent, which keeps and spreads it. Every
 * member then drops NODE and refuses that identity; the master deletes the
 * node from Kubernetes.
 */
export const remove: Command = async (ctx) => {
  if (ctx.flags.allCurrent) throw usageError('remove takes one NODE, not --all-current', REMOVE_USAGE);
  if (ctx.args.length !== 1)
    throw usageError(ctx.args.length === 0 ? 'remove needs a NODE name' : `remove takes one NODE, got "${ctx.args.join(' ')}"`, REMOVE_USAGE);
  const node = ctx.args[0] as string;
  const identity = ctx.flags.identity === undefined ? undefined : parseIdentityText(ctx.flags.identity);
  const { key, socket, adminPub, self, members } = await adminSession(ctx);
  if (node === self) ctx.stderr(`warning: "${node}" is this machine: every member will refuse it from now on, this agent included in its peers' eyes`);
  if (adminPub === null) throw noAdminPubError('so its agent cannot check a removal, and nor can the others');
  const known = members.find((m) => m.name === node);
  const idPub = identity ?? known?.id_pub;
  if (!idPub) throw usageError(`this agent knows no member "${node}": give its identity with --identity ed25519:KEY`, REMOVE_USAGE);
  const r = signRemoval(key, node, idPub, Date.now());
  const answer = (await request(socket, { cmd: 'remove', removal: r })) as AdmitAnswer;
  if (answer.result === 'refused') {
    ctx.stderr(`hepto-agent: the agent refused the removal of ${node} (${identityText(idPub)}): ${answer.why ?? 'no reason given'}`);
    return 1;
  }
  ctx.stdout(`${answer.result === 'already' ? 'already removed' : 'removed'}: ${node} identity ${fingerprint(idPub)}`);
  ctx.stdout(
    `every member drops it and refuses that identity from now on, and the master deletes the node from Kubernetes; the machine still holds the overlay key and the agent key: give the others new ones with hepto-agent rotate-keys`,
  );
  return 0;
};
