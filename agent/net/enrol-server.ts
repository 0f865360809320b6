/**
 * The anchor's end of enrolment (enrol.ts, docs/protocol.md "Enrolment"): one
 * WebSocket on ENROL_PATH, accepted by the listener (ws-listener.ts) under
 * the same pre-auth guards as a gossip handshake (byte budget, deadline,
 * per-source cap). It is released from them only once the welcome is sent,
 * so a whole enrolment, the policy's decision included, must fit in the
 * handshake timeout. Anything malformed, out of order or refused gets a
 * `refused` message with a one-line reason, a `rejected` report and a close;
 * nothing throws out of a socket callback, and no secret reaches a reason or
 * a log line.
 */
import type WebSocket from 'ws';
import { errorMessage, isHeptoError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { registerSecret } from '../../shared/log';
import { verifyAdmission } from '../admin/admission';
import type { InvitationUse } from '../admin/invitation';
import {
  decodeEnrolMessage,
  EnrolAnchor,
  encodeEnrolMessage,
  ENROL_MAX_MESSAGE,
  oneLine,
  type EnrolAnchorSelf,
  type EnrolDecision,
  type EnrolMessage,
} from './enrol';
import { fingerprint } from './identity';

export interface EnrolServerHooks {
  /** This anchor's name, identity and admission; undefined: it cannot take enrolments now (refuse with a reason). */
  self(): EnrolAnchorSelf | undefined;
  /** admin_pub this anchor trusts (its config); null: refuse enrolments ("this anchor has no admin_pub"). */
  adminPub(): string | null;
  /** Policy: called once per valid, authenticated use. */
  decide(use: InvitationUse, remote: string): Promise<EnrolDecision> | EnrolDecision;
}

export interface EnrolConnectionOptions {
  /** host:port of the new machine, for reports. */
  remote: string;
  hooks: EnrolServerHooks;
  logger: Logger;
  /** Reports a refusal (the transport's `rejected` event). */
  rejected(reason: string): void;
  /** Releases the socket from the listener's pre-auth guards; called once, with the welcome. */
  release(): void;
  /** The anchor's clock, for the invitation's expiry. */
  now?: () => number;
}

/** Grace given to a peer to close after our close frame, before the socket is cut. */
const CLOSE_GRACE_MS = 1_000;
const CLOSE_POLICY = 1008;

type Stage = 'hello' | 'use' | 'deciding' | 'done';

/** Serves one accepted enrolment WebSocket until it closes. */
export function serveEnrolment(ws: WebSocket, o: EnrolConnectionOptions): void {
  new EnrolServerConnection(ws, o);
}

class EnrolServerConnection {
  private stage: Stage = 'hello';
  private anchor: EnrolAnchor | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly o: EnrolConnectionOptions,
  ) {
    ws.on('message', (data, isBinary) => this.guard(() => this.onMessage(toBytes(data), isBinary)));
    ws.on('error', (err) => this.onError(err));
    ws.on('close', () => this.onClose());
  }

  /** Runs a step; a refusal of the protocol (PEER_AUTH_FAILED) goes to the client, anything else is logged and refused as internal. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (isHeptoError(e) && e.code === 'PEER_AUTH_FAILED') return this.refuse(e.message);
      this.o.logger.warn('enrolment failed on the anchor', { remote: this.o.remote, error: errorMessage(e) });
      this.refuse('the anchor failed to serve this enrolment (internal error; see its log)');
    }
  }

  private onMessage(data: Uint8Array, isBinary: boolean): void {
    if (this.stage === 'done') return;
    if (this.stage === 'deciding') return this.refuse('a message arrived while the anchor was deciding (out of order)');
    const m = decodeEnrolMessage(data, this.stage === 'hello' ? ['hello'] : ['use'], isBinary);
    if (m.t === 'hello') return this.onHello(m);
    if (m.t === 'use') return this.onUse(m);
  }

  private onHello(m: Extract<EnrolMessage, { t: 'hello' }>): void {
    const adminPub = this.o.hooks.adminPub();
    if (adminPub === null) return this.refuse('this anchor has no admin_pub, so it cannot check invitations');
    const self = this.o.hooks.self();
    if (!self) return this.refuse('this anchor cannot take enrolments now (it has no admission of its own yet)');
    if (!verifyAdmission(adminPub, { node: self.name, id_pub: self.identity.idPub, at: self.admission.at, sig: self.admission.sig })) {
      return this.refuse("this anchor's own admission does not verify under its admin_pub");
    }
    this.anchor = new EnrolAnchor(self, adminPub);
    const reply = this.anchor.onHello(m);
    this.stage = 'use';
    this.send(reply);
  }

  private onUse(m: Extract<EnrolMessage, { t: 'use' }>): void {
    const use = this.anchor!.openUse(m, (this.o.now ?? Date.now)());
    this.stage = 'deciding';
    let decision: Promise<EnrolDecision>;
    try {
      decision = Promise.resolve(this.o.hooks.decide(use, this.o.remote));
    } catch (e) {
      decision = Promise.reject(e);
    }
    decision.then(
      (d) => this.guard(() => this.decided(use, d)),
      (e) => {
        this.o.logger.warn('enrolment policy failed', { remote: this.o.remote, invitation: use.body.id, error: errorMessage(e) });
        this.refuse('the anchor could not decide on this enrolment (internal error; see its log)');
      },
    );
  }

  private decided(use: InvitationUse, d: EnrolDecision): void {
    if (this.stage !== 'deciding') {
      this.o.logger.info('enrolment decided after the new machine left', {
        remote: this.o.remote,
        node: use.node,
        id: fingerprint(use.id_pub),
        invitation: use.body.id,
        granted: d.ok,
      });
      return;
    }
    if (!d.ok) return this.refuse(oneLine(String(d.reason)) || 'refused by the anchor');
    for (const s of [d.secrets.overlay_key, d.secrets.agent_key, d.secrets.cluster_key]) registerSecret(s);
    const welcome = encodeEnrolMessage(this.anchor!.welcome(d.secrets, d.grant));
    this.stage = 'done';
    this.o.release();
    this.ws.send(welcome);
    this.o.logger.info('enrolment granted', { remote: this.o.remote, node: use.node, id: fingerprint(use.id_pub), invitation: use.body.id });
    this.close(1000);
  }

  private send(m: EnrolMessage): void {
    this.ws.send(encodeEnrolMessage(m));
  }

  /** Tells the client why (if the socket is still open), reports it and closes. */
  private refuse(reason: string): void {
    if (this.stage === 'done') return;
    this.stage = 'done';
    this.anchor?.wipe();
    const why = oneLine(reason) || 'refused';
    this.o.rejected(`enrolment refused: ${why}`);
    if (this.ws.readyState === this.ws.OPEN) {
      try {
        this.ws.send(encodeEnrolMessage({ t: 'refused', reason: why }));
      } catch {
        /* closing anyway */
      }
    }
    this.close(CLOSE_POLICY);
  }

  private close(code: number): void {
    try {
      this.ws.close(code);
    } catch {
      this.ws.terminate();
    }
    // A peer that ignores the close frame is cut after a short grace period.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private onError(err: Error): void {
    const code = (err as { code?: string }).code;
    let reason: string | undefined;
    if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') reason = `message larger than the enrolment limit of ${ENROL_MAX_MESSAGE} bytes`;
    else if (code && code.startsWith('WS_ERR_')) reason = 'malformed WebSocket frame';
    if (reason !== undefined && this.stage !== 'done') {
      this.stage = 'done';
      this.anchor?.wipe();
      this.o.rejected(`enrolment refused: ${reason}`);
    }
    // ws closes the socket itself after an error.
  }

  /** Closed, for whatever reason: a decision still pending is logged, not sent. */
  private onClose(): void {
    this.stage = 'done';
    this.anchor?.wipe();
  }
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
