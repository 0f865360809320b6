/**
 * An anchor granting the use of an invitation (issue 13; docs/trust.md,
 * "Invitations"): the enrolment protocol (agent/net/enrol-server.ts) hands
 * over a use the new machine signed with the invitation key; the anchor
 * checks it against what it knows (expiry on its own clock, the name, the
 * uses already granted), signs the grant with its identity key and spreads
 * the resulting admission by gossip at once, so that a second machine
 * racing on the same single-use invitation is refused by every member.
 */
import { signGrant, type Admission } from '../admin/admission';
import { useProblem, type InvitationUse } from '../admin/invitation';
import { fingerprint } from '../net/identity';
import { admissionUpdate, ownProof, proofProblem, remember, slot } from './admissions';
import type { Ctx, State } from './state';
import { count, emit } from './state';

export type GrantResult = { ok: true; admission: Admission } | { ok: false; reason: string };

export function grantUse(s: State, ctx: Ctx, use: InvitationUse): GrantResult {
  const refuse = (reason: string): GrantResult => {
    count(s, 'invitation-refused');
    return { ok: false, reason };
  };
  if (s.adminPub === null) return refuse('this anchor has no admin_pub, so it cannot check invitations');
  const bad = useProblem(s.adminPub, use);
  if (bad) return refuse(`the invitation is not valid: ${bad}`);
  if (ctx.now >= use.body.exp) return refuse(`the invitation expired on ${new Date(use.body.exp).toISOString()}`);
  const own = ownProof(s);
  if (!own || own.inv) return refuse('this anchor has no admission of its own from the admin key, so its grant would not count: enrol through another anchor');
  const known = s.admissions.get(use.node);
  if (known && known.id_pub !== use.id_pub) {
    return refuse(
      `the node name "${use.node}" is already admitted to another identity (${fingerprint(known.id_pub)}): use another node name, or ask the admin to admit this machine`,
    );
  }
  const removal = s.removals.get(use.id_pub);
  if (removal && removal.node === use.node) return refuse('the admin removed this identity from the cluster');
  const taken = [...(s.invUses.get(use.body.id)?.keys() ?? [])].filter((p) => p !== use.id_pub).length;
  if (taken >= use.body.uses) return refuse(`the invitation is spent: ${use.body.uses} of ${use.body.uses} use${use.body.uses > 1 ? 's' : ''} taken`);
  const inv = {
    body: use.body,
    body_sig: use.sig,
    use_at: use.at,
    use_sig: use.use_sig,
    anchor: s.selfName,
    anchor_id: s.selfPub,
    anchor_adm: { at: own.at, sig: own.sig },
  };
  const at = Math.max(ctx.now, known ? known.at + 1 : 0);
  const a: Admission = { node: use.node, id_pub: use.id_pub, at, sig: signGrant(inv, use.node, use.id_pub, at, s.secretKey), inv };
  const problem = proofProblem(s, a);
  if (problem) return refuse(problem === 'over-used' ? 'the invitation is spent' : "the grant does not verify (this anchor's own admission?)");
  remember(s, a);
  s.queue.enqueue(slot(a.node), admissionUpdate(a));
  emit(ctx, 'admission', a.node, 0, `identity ${fingerprint(a.id_pub)} by invitation ${use.body.id}`);
  return { ok: true, admission: a };
}
