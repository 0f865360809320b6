/**
 * A machine installed with an invitation (config field `invite`, no
 * overlay_key yet) enrols before it starts: through the invitation's
 * anchors (agent/net/enrol-client.ts) it receives the overlay key, the k3s
 * agent token, admin_pub and the master's name, and an admission by
 * invitation. It keeps the admission (admission.json), writes the keys into
 * its own config (atomically, 0600) in place of `invite`, and then starts as
 * an ordinary member. docs/trust.md, "Invitations".
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../shared/atomic-write';
import { loadConfig } from '../../shared/config/load';
import type { HeptoConfig } from '../../shared/config/types';
import { pendingEnrolment } from '../../shared/config/validate';
import { HeptoError, errorMessage, isHeptoError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import type { AdmissionProof } from '../../shared/member';
import { verifyProof } from '../admin/admission';
import { decodeInvitation } from '../admin/invitation';
import { enrol } from '../net/enrol-client';
import { fingerprint, loadOrCreateIdentity } from '../net/identity';
import { AdmissionStore } from './admission-store';

export interface EnrolmentDeps {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** The enrolment itself; the real one by default (tests pass another). */
  enrol?: typeof enrol;
  /** Called with a one-line status while it waits (systemd STATUS). */
  status?(line: string): void;
}

/** A final refusal: the invitation cannot be used. `run` exits 4, which the unit does not restart. */
function refused(why: string): HeptoError {
  return new HeptoError('ENROL_REFUSED', why, {
    hint: 'ask the cluster admin for a new invitation (hepto-agent invite), put it in the config as "invite" (or run the new join line), then start the agent again',
  });
}

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * Returns the config to run with: `config` itself when it does not wait to
 * enrol; otherwise the config written after enrolling. Unreachable anchors
 * are retried with backoff until the invitation expires; a refusal (spent,
 * expired, forged, wrong name) is final: a HeptoError with the anchors'
 * one-line reasons.
 */
export async function enrolIfInvited(file: string, config: HeptoConfig, logger: Logger, deps: EnrolmentDeps): Promise<HeptoConfig> {
  if (!pendingEnrolment(config) || config.invite === null) return config;
  const stateDir = path.join(config.storage_base, config.node);
  const identity = await loadOrCreateIdentity(stateDir, deps.now());
  let inv: ReturnType<typeof decodeInvitation>;
  try {
    inv = decodeInvitation(config.invite, deps.now());
  } catch (e) {
    throw refused(errorMessage(e));
  }
  logger.info('enrolling with an invitation', {
    invitation: inv.body.id,
    anchors: inv.body.anchors.join(','),
    node: config.node,
    identity: fingerprint(identity.idPub),
    expires: new Date(inv.body.exp).toISOString(),
  });
  const run = deps.enrol ?? enrol;
  const bind = config.gossip_listen.length === 1 && !['::', '0.0.0.0'].includes(config.gossip_listen[0] as string) ? config.gossip_listen[0] : undefined;
  let wait = RETRY_MIN_MS;
  for (;;) {
    deps.status?.(`enrolling through ${inv.body.anchors.join(', ')}`);
    let done: Awaited<ReturnType<typeof enrol>>;
    try {
      done = await run({ invitation: inv, node: config.node, identity, now: deps.now, ...(bind ? { bindAddress: bind } : {}) });
    } catch (e) {
      // Refused (or the invitation is bad): retrying cannot help, and systemd must not restart us (exit 4).
      if (isHeptoError(e) && (e.code === 'NOT_ADMITTED' || e.code === 'CONFIG_INVALID')) throw refused(e.message);
      if (deps.now() + wait >= inv.body.exp) {
        throw refused(`the invitation expired before any anchor could be reached: ${errorMessage(e)}`);
      }
      logger.warn('cannot enrol yet; retrying', { error: errorMessage(e), retry_in_s: Math.round(wait / 1000) });
      await deps.sleep(wait);
      wait = Math.min(RETRY_MAX_MS, wait * 2);
      continue;
    }
    const proof: AdmissionProof = {
      at: done.grant.at,
      sig: done.grant.sig,
      inv: {
        body: done.use.body,
        body_sig: done.use.sig,
        use_at: done.use.at,
        use_sig: done.use.use_sig,
        anchor: done.through.name,
        anchor_id: done.through.id_pub,
        anchor_adm: { at: done.through.admission.at, sig: done.through.admission.sig },
      },
    };
    if (!verifyProof(inv.body.admin_pub, config.node, identity.idPub, proof)) {
      throw refused(`anchor "${done.through.name}" (${done.anchor}) granted an admission that does not verify`);
    }
    await new AdmissionStore(stateDir, logger).save({ node: config.node, id_pub: identity.idPub, ...proof });
    await writeEnrolledConfig(file, done.secrets, inv.body.anchors);
    logger.info('enrolled: this machine is a member now', {
      through: done.through.name,
      anchor: done.anchor,
      master: done.secrets.master,
      admitted_at: new Date(proof.at).toISOString(),
    });
    const { config: next } = await loadConfig(file);
    return next;
  }
}

/** The config file with what enrolment brought, and without the invitation; the rest as the operator wrote it. */
async function writeEnrolledConfig(
  file: string,
  s: { overlay_key: string; agent_key: string | null; cluster_key: string | null; admin_pub: string; master: string; anchors: string[] },
  fallbackAnchors: string[],
): Promise<void> {
  const raw = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  delete raw.invite;
  raw.master = s.master;
  raw.overlay_key = s.overlay_key;
  if (s.agent_key !== null) raw.agent_key = s.agent_key;
  if (s.cluster_key !== null) raw.cluster_key = s.cluster_key;
  raw.admin_pub = s.admin_pub;
  raw.anchors = s.anchors.length > 0 ? s.anchors : fallbackAnchors;
  await writeFileAtomic(file, JSON.stringify(raw, null, 2) + '\n', { mode: 0o600 });
}
