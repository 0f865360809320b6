/**
 * The new machine's end of enrolment (enrol.ts, docs/protocol.md
 * "Enrolment"): with an invitation, its node name and its identity, it asks
 * the invitation's anchors in order for the cluster's secrets. Before
 * anything leaves this machine it checks the invitation itself (expiry,
 * signatures, name); the use goes only to an anchor that proved it is an
 * admitted member of the invitation's cluster. Errors are one line, list
 * each anchor's reason, and never hold a key, the token or its seed.
 */
import { invalidInvitation } from '../admin/invitation';
import type { AdmissionProof } from '../../shared/member';
import { isIP } from 'net';
import WebSocket from 'ws';
import { HeptoError, errorMessage } from '../../shared/errors';
import { registerSecret } from '../../shared/log';
import { useInvitation, useProblem, type Invitation, type InvitationUse } from '../admin/invitation';
import { decodeEnrolMessage, EnrolClient, encodeEnrolMessage, ENROL_MAX_MESSAGE, ENROL_PATH, oneLine, type EnrolGrant, type EnrolSecrets } from './enrol';
import { checkName } from './handshake';
import type { Identity } from './identity';
import { describeSocketError } from './ws-connection';
import { parseEndpoint } from './ws-transport';

export interface EnrolOptions {
  invitation: Invitation;
  node: string;
  identity: Identity;
  now: () => number;
  /** Per anchor, from dialing to the welcome. Default DEFAULT_ENROL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Local address for the connections (same family only). */
  bindAddress?: string;
}

export const DEFAULT_ENROL_TIMEOUT_MS = 10_000;

const HINT =
  'check that the anchors are reachable on their gossip port and run this version of hepto-agent; if they refused the invitation, ask the cluster admin for a new one (hepto-agent invite)';

const invalid = invalidInvitation;

/**
 * Enrols through the invitation's anchors, in order, and returns the first
 * welcome: `anchor` is the address that granted it, `use` the invitation
 * use this machine signed (its admission once the grant is gossiped).
 * Rejects with USAGE for an invitation that is expired, forged or for
 * another name (nothing is sent then), NOT_ADMITTED when an anchor refused
 * the use, PEER_AUTH_FAILED when no anchor could be reached or proved
 * itself; the one-line message lists each anchor's reason.
 */
/** The anchor that granted the enrolment, as it proved itself: name, identity key and its own admission. */
export interface EnrolledThrough {
  name: string;
  id_pub: string;
  admission: AdmissionProof;
}

export async function enrol(
  o: EnrolOptions,
): Promise<{ anchor: string; through: EnrolledThrough; secrets: EnrolSecrets; grant: EnrolGrant; use: InvitationUse }> {
  checkName(o.node);
  const inv = o.invitation;
  const now = o.now();
  if (inv.body.anchors.length === 0) throw invalid('it names no anchor');
  if (now >= inv.body.exp) throw invalid(`it expired on ${new Date(inv.body.exp).toISOString()}`);
  const use = useInvitation(inv, o.node, o.identity.idPub, now);
  const problem = useProblem(inv.body.admin_pub, use);
  if (problem !== null) throw invalid(problem);
  const reasons: string[] = [];
  let refused = false;
  for (const addr of inv.body.anchors) {
    const r = await enrolAt(addr, o, use);
    if (r.ok) {
      for (const s of [r.secrets.overlay_key, r.secrets.agent_key, r.secrets.cluster_key]) registerSecret(s);
      return { anchor: addr, through: r.through, secrets: r.secrets, grant: r.grant, use };
    }
    refused ||= r.refused;
    const prefix = `anchor ${addr}`;
    reasons.push(r.reason.startsWith(prefix) ? r.reason : `${prefix}: ${r.reason}`);
  }
  throw new HeptoError(refused ? 'NOT_ADMITTED' : 'PEER_AUTH_FAILED', `cannot enrol: ${reasons.join('; ')}`, { hint: HINT });
}

type Attempt = { ok: true; through: EnrolledThrough; secrets: EnrolSecrets; grant: EnrolGrant } | { ok: false; reason: string; refused: boolean };

/** One attempt with one anchor; never rejects. */
function enrolAt(addr: string, o: EnrolOptions, use: InvitationUse): Promise<Attempt> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_ENROL_TIMEOUT_MS;
  return new Promise<Attempt>((resolve) => {
    let url: string;
    let localAddress: string | undefined;
    try {
      const { host, port } = parseEndpoint(addr);
      const family = isIP(host);
      const bind = o.bindAddress;
      localAddress = bind && (family === 0 || isIP(bind) === family) ? bind : undefined;
      url = `ws://${family === 6 ? `[${host}]` : host}:${port}${ENROL_PATH}`;
    } catch (e) {
      resolve({ ok: false, reason: oneLine(errorMessage(e)), refused: false });
      return;
    }
    const client = new EnrolClient({ invitation: o.invitation, identity: o.identity, use, anchor: addr });
    let stage: 'connecting' | 'anchor' | 'welcome' | 'done' = 'connecting';
    let settled = false;
    let ws: WebSocket | undefined;
    const finish = (r: Attempt): void => {
      if (settled) return;
      settled = true;
      stage = 'done';
      clearTimeout(timer);
      client.wipe();
      resolve(r.ok ? r : { ...r, reason: oneLine(r.reason) });
    };
    const fail = (reason: string, refused = false): void => finish({ ok: false, reason, refused });
    /** Ends the socket: a close frame, then a cut if the anchor does not answer it. */
    const end = (code: number): void => {
      if (!ws) return;
      const w = ws;
      try {
        w.close(code);
      } catch {
        w.terminate();
      }
      setTimeout(() => w.terminate(), 1_000).unref();
    };
    const timer = setTimeout(() => {
      fail(`no answer within ${timeoutMs} ms`);
      ws?.terminate();
    }, timeoutMs);
    timer.unref();
    try {
      ws = new WebSocket(url, {
        maxPayload: ENROL_MAX_MESSAGE,
        perMessageDeflate: false,
        followRedirects: false,
        handshakeTimeout: timeoutMs,
        localAddress,
      });
    } catch (e) {
      fail(describeSocketError(e as Error));
      return;
    }
    const socket = ws;
    socket.on('unexpected-response', (_req, res) => {
      fail(`answered HTTP ${res.statusCode} to ${ENROL_PATH}: not a hepto agent that takes enrolments`);
      socket.terminate();
    });
    socket.on('error', (e) => {
      const code = (e as { code?: string }).code;
      if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') fail(`sent a message larger than the enrolment limit of ${ENROL_MAX_MESSAGE} bytes`);
      else if (code && code.startsWith('WS_ERR_')) fail('sent a malformed WebSocket frame');
      else fail(describeSocketError(e));
    });
    socket.on('close', (code) => fail(`closed the connection before answering (code ${code})`));
    const guard = (fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        fail(errorMessage(e));
        end(1008);
      }
    };
    socket.on('open', () =>
      guard(() => {
        if (stage !== 'connecting') return;
        stage = 'anchor';
        socket.send(encodeEnrolMessage(client.hello()));
      }),
    );
    socket.on('message', (data, isBinary) =>
      guard(() => {
        if (stage === 'anchor') {
          const m = decodeEnrolMessage(toBytes(data), ['anchor', 'refused'], isBinary);
          if (m.t === 'refused') {
            fail(`anchor ${addr} refused: ${m.reason}`, true);
            return end(1000);
          }
          if (m.t !== 'anchor') return;
          const reply = client.onAnchor(m);
          stage = 'welcome';
          socket.send(encodeEnrolMessage(reply));
        } else if (stage === 'welcome') {
          const m = decodeEnrolMessage(toBytes(data), ['welcome', 'refused'], isBinary);
          if (m.t === 'refused') {
            fail(`anchor ${addr} refused: ${m.reason}`, true);
            return end(1000);
          }
          if (m.t !== 'welcome') return;
          const { secrets, grant } = client.onWelcome(m);
          finish({ ok: true, through: { name: client.anchorName!, id_pub: client.anchorIdPub!, admission: client.anchorAdmission! }, secrets, grant });
          end(1000);
        }
        // After the outcome, anything more is ignored.
      }),
    );
  });
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
