import * as assert from 'assert';
import * as http from 'http';
import WebSocket from 'ws';
import { signAdmission } from '../../../agent/admin/admission';
import { decodeInvitation, encodeInvitation, makeInvitation, useInvitation, type Invitation, type InvitationUse } from '../../../agent/admin/invitation';
import { generateAdminKey, type AdminKey } from '../../../agent/admin/key';
import {
  decodeEnrolMessage,
  EnrolClient,
  encodeEnrolMessage,
  ENROL_PATH,
  type EnrolAnchorSelf,
  type EnrolDecision,
  type EnrolSecrets,
} from '../../../agent/net/enrol';
import { enrol } from '../../../agent/net/enrol-client';
import type { EnrolServerHooks } from '../../../agent/net/enrol-server';
import { generateIdentity, type Identity } from '../../../agent/net/identity';
import type { Limits } from '../../../agent/net/limits';
import { WsTransport } from '../../../agent/net/ws-transport';
import { isHeptoError, type HeptoError } from '../../../shared/errors';
import { memoryLogger } from '../../helpers/memory-logger';
import { Recorder, waitFor } from '../../helpers/transport-contract';
import { Cleanup, deadLoopbackAddress, startNode, TcpProxy, TEST_OVERLAY_KEY, text } from './fixtures';

const DAY = 86_400_000;

/** Test secrets, never a real cluster's. */
const SECRETS: EnrolSecrets = {
  overlay_key: TEST_OVERLAY_KEY,
  agent_key: 'EnrolAgentToken0123456789abcdefgh',
  cluster_key: 'EnrolClusterKey0123456789abcdefg',
  admin_pub: '', // set per test: the cluster's admin_pub
  master: 'anchor-1',
  anchors: [],
};

interface Anchor {
  name: string;
  t: WsTransport;
  rec: Recorder;
  addr: string;
  identity: Identity;
  logLines: string[];
  /** What the policy was asked. */
  decided: { use: InvitationUse; remote: string }[];
  hooks: EnrolServerHooks;
}

interface AnchorOpts {
  name?: string;
  /** The admin key that admits this anchor; undefined: not admitted (self() is undefined). */
  admittedBy?: AdminKey | undefined;
  /** This anchor's admin_pub (null: none). */
  adminPub: string | null;
  decide?: (use: InvitationUse, remote: string) => Promise<EnrolDecision> | EnrolDecision;
  limits?: Partial<Limits>;
  enrol?: boolean;
}

async function startAnchor(cleanup: Cleanup, o: AnchorOpts): Promise<Anchor> {
  const name = o.name ?? 'anchor-1';
  const identity = generateIdentity(Date.now());
  const rec = new Recorder();
  const { logger, lines } = memoryLogger('debug');
  const decided: Anchor['decided'] = [];
  let self: EnrolAnchorSelf | undefined;
  if (o.admittedBy) {
    const adm = signAdmission(o.admittedBy, name, identity.idPub, Date.now());
    self = { name, identity, admission: { at: adm.at, sig: adm.sig } };
  }
  const hooks: EnrolServerHooks = {
    self: () => self,
    adminPub: () => o.adminPub,
    decide: (use, remote) => {
      decided.push({ use, remote });
      if (o.decide) return o.decide(use, remote);
      return { ok: true, secrets: { ...SECRETS, admin_pub: o.adminPub ?? '' }, grant: { anchor: name, at: Date.now(), sig: 'Z3JhbnQ=' } };
    },
  };
  const t = new WsTransport({
    overlayKey: TEST_OVERLAY_KEY,
    identity,
    name,
    listen: { hosts: ['127.0.0.1'], port: 0 },
    events: rec.events,
    logger,
    limits: o.limits,
    dialTimeoutMs: 2_000,
    ...(o.enrol === false ? {} : { enrol: hooks }),
  });
  cleanup.add(() => t.stop());
  await t.start();
  const a = t.address()[0];
  return { name, t, rec, addr: `${a.host}:${a.port}`, identity, logLines: lines, decided, hooks };
}

function invite(admin: AdminKey, anchors: string[], o: { ttlMs?: number; node?: string; now?: number } = {}): Invitation {
  const inv = makeInvitation(admin, { anchors, ttlMs: o.ttlMs ?? DAY, uses: 1, ...(o.node ? { node: o.node } : {}) }, o.now ?? Date.now());
  // Through the token, as a new machine gets it.
  return o.now === undefined ? decodeInvitation(encodeInvitation(inv), Date.now()) : inv;
}

async function refusal(p: Promise<unknown>): Promise<HeptoError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isHeptoError(e), String(e));
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e;
  }
  assert.fail('expected enrol() to fail');
}

/** Plays the client protocol by hand over a raw WebSocket (for crafted uses); resolves with the outcome. */
function rawEnrol(cleanup: Cleanup, addr: string, client: EnrolClient): Promise<{ refused?: string; welcome?: unknown; code: number }> {
  const ws = new WebSocket(`ws://${addr}${ENROL_PATH}`, { perMessageDeflate: false });
  cleanup.add(() => ws.terminate());
  const out: { refused?: string; welcome?: unknown } = {};
  ws.on('error', () => undefined);
  ws.on('open', () => ws.send(encodeEnrolMessage(client.hello())));
  ws.on('message', (data) => {
    const m = decodeEnrolMessage(new Uint8Array(data as Buffer), ['anchor', 'welcome', 'refused']);
    if (m.t === 'anchor') ws.send(encodeEnrolMessage(client.onAnchor(m)));
    else if (m.t === 'refused') out.refused = m.reason;
    else if (m.t === 'welcome') out.welcome = client.onWelcome(m);
  });
  return new Promise((resolve) => ws.on('close', (code) => resolve({ ...out, code })));
}

function httpUpgrade(addr: string, path: string): Promise<number> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request({
      host,
      port,
      path,
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 101);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Enrolment over the gossip port (real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const admin = generateAdminKey(Date.now());
  const otherAdmin = generateAdminKey(Date.now());

  it('a whole enrolment: the secrets arrive intact, the policy saw the authenticated use', async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    const inv = invite(admin, [anchor.addr]);
    const newcomer = generateIdentity(Date.now());
    const before = Date.now();
    const got = await enrol({ invitation: inv, node: 'venus', identity: newcomer, now: Date.now });
    assert.strictEqual(got.anchor, anchor.addr);
    assert.deepStrictEqual(got.secrets, { ...SECRETS, admin_pub: admin.pub });
    assert.strictEqual(got.grant.anchor, 'anchor-1');
    assert.strictEqual(anchor.decided.length, 1, 'the policy is asked once');
    const { use, remote } = anchor.decided[0];
    assert.deepStrictEqual(use, got.use);
    assert.strictEqual(use.node, 'venus');
    assert.strictEqual(use.id_pub, newcomer.idPub);
    assert.strictEqual(use.body.id, inv.body.id);
    assert.ok(use.at >= before && use.at <= Date.now());
    assert.match(remote, /^127\.0\.0\.1:\d+$/);
    assert.deepStrictEqual(anchor.rec.rejections, []);
    assert.ok(
      anchor.logLines.some((l) => l.includes('enrolment granted') && l.includes('venus')),
      anchor.logLines.join('\n'),
    );
    await waitFor('the enrolment socket is gone', () => (anchor.t as unknown as { listener: { pendingCount(): number } }).listener.pendingCount() === 0);
  });

  it("tries the anchors in order: past a dead one and one the invitation's admin never admitted", async () => {
    const dead = await deadLoopbackAddress();
    const stranger = await startAnchor(cleanup, { name: 'stranger', admittedBy: otherAdmin, adminPub: otherAdmin.pub });
    const good = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    const inv = invite(admin, [dead, stranger.addr, good.addr]);
    const got = await enrol({ invitation: inv, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now, timeoutMs: 2_000 });
    assert.strictEqual(got.anchor, good.addr);
    assert.strictEqual(stranger.decided.length, 0, 'the use never reached the stranger');

    // With no good anchor, the error lists each one's reason.
    const inv2 = invite(admin, [dead, stranger.addr]);
    const e = await refusal(enrol({ invitation: inv2, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now, timeoutMs: 2_000 }));
    assert.strictEqual(e.code, 'PEER_AUTH_FAILED');
    assert.match(
      e.message,
      new RegExp(`^cannot enrol: anchor ${dead}: connection refused .*; anchor ${stranger.addr} is not an admitted member of the invitation's cluster$`),
    );
    assert.strictEqual(stranger.decided.length, 0);
  });

  it('a policy refusal reaches the client as its one-line reason', async () => {
    const anchor = await startAnchor(cleanup, {
      admittedBy: admin,
      adminPub: admin.pub,
      decide: () => ({ ok: false, reason: 'invitation 0123 is used up\n(2 of 1 uses)' }),
    });
    const inv = invite(admin, [anchor.addr]);
    const e = await refusal(enrol({ invitation: inv, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.strictEqual(e.code, 'NOT_ADMITTED');
    assert.strictEqual(e.message, `cannot enrol: anchor ${anchor.addr} refused: invitation 0123 is used up (2 of 1 uses)`);
    assert.strictEqual(anchor.decided.length, 1);
    await waitFor('the anchor reports it', () => anchor.rec.rejections.length === 1);
    assert.match(anchor.rec.rejections[0].reason, /^enrolment refused: invitation 0123 is used up/);
  });

  it('a policy that throws or is too slow never hangs the client', async () => {
    const throwing = await startAnchor(cleanup, {
      admittedBy: admin,
      adminPub: admin.pub,
      decide: () => {
        throw new Error('db down');
      },
    });
    const e1 = await refusal(enrol({ invitation: invite(admin, [throwing.addr]), node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.match(e1.message, /refused: the anchor could not decide on this enrolment \(internal error; see its log\)/);
    assert.ok(throwing.logLines.some((l) => l.includes('enrolment policy failed') && l.includes('db down')));

    const broken = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub, decide: () => ({ ok: true }) as unknown as EnrolDecision });
    const e0 = await refusal(enrol({ invitation: invite(admin, [broken.addr]), node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.match(e0.message, /refused: the anchor failed to serve this enrolment \(internal error; see its log\)$/);
    assert.ok(broken.logLines.some((l) => l.includes('enrolment failed on the anchor')));

    const slow = await startAnchor(cleanup, {
      admittedBy: admin,
      adminPub: admin.pub,
      limits: { handshakeTimeoutMs: 300 },
      decide: () => new Promise((r) => setTimeout(() => r({ ok: false, reason: 'too late' }), 600)),
    });
    const e2 = await refusal(enrol({ invitation: invite(admin, [slow.addr]), node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.strictEqual(e2.code, 'PEER_AUTH_FAILED');
    assert.match(e2.message, /closed the connection before answering/);
    await waitFor('the anchor reports the deadline', () => slow.rec.rejections.some((r) => r.reason === 'enrolment not finished within 300 ms'));
    await waitFor('the late decision is logged, not sent', () => slow.logLines.some((l) => l.includes('enrolment decided after the new machine left')));
  });

  it('an expired or forged token never leaves the new machine', async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    const inv = invite(admin, [anchor.addr], { ttlMs: 1_000, now: Date.now() - 5_000 });
    assert.throws(() => decodeInvitation(encodeInvitation(inv), Date.now()), /expired/);
    const expired = await refusal(enrol({ invitation: inv, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.strictEqual(expired.code, 'CONFIG_INVALID');
    assert.match(expired.message, /the invitation is not valid: it expired on/);

    const good = invite(admin, [anchor.addr]);
    const forged: Invitation = { ...good, body: { ...good.body, uses: 99 } };
    const f = await refusal(enrol({ invitation: forged, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.strictEqual(f.code, 'CONFIG_INVALID');
    assert.match(f.message, /the invitation signature does not verify/);

    const named = invite(admin, [anchor.addr], { node: 'mars' });
    const n = await refusal(enrol({ invitation: named, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.match(n.message, /it is for node "mars", and this machine is "venus"/);

    assert.strictEqual(anchor.t.stats().bytesReceived, 0, 'nothing reached the anchor');
    assert.strictEqual(anchor.decided.length, 0);
  });

  it('the anchor refuses crafted uses that useProblem or its own clock refuses, before the policy', async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    const id = generateIdentity(Date.now());
    const inv = invite(admin, [anchor.addr]);
    const run = (use: InvitationUse, invitation = inv) =>
      rawEnrol(cleanup, anchor.addr, new EnrolClient({ invitation, identity: id, use, anchor: anchor.addr }));

    // Used "after" its expiry.
    const late = await run({ ...useInvitation(inv, 'venus', id.idPub, Date.now()), at: inv.body.exp });
    assert.strictEqual(late.code, 1008);
    assert.match(late.refused ?? '', /^the invitation use is not valid: it was used after its expiry/);
    // Signed for another identity than the one that proves itself.
    const other = await run(useInvitation(inv, 'venus', generateIdentity(Date.now()).idPub, Date.now()));
    assert.match(other.refused ?? '', /did not prove it holds the identity key it enrols/);
    // Another cluster's invitation (the client trusts the anchor through its own admin: both admitted it).
    const foreign = invite(otherAdmin, [anchor.addr]);
    const foreignAnchorView: Invitation = { ...foreign, body: { ...foreign.body, admin_pub: admin.pub } };
    const wrongCluster = await run(useInvitation(foreign, 'venus', id.idPub, Date.now()), foreignAnchorView);
    assert.match(wrongCluster.refused ?? '', /made for another cluster/);
    // Expired by the anchor's clock, backdated by the client.
    const old = invite(admin, [anchor.addr], { ttlMs: 1_000, now: Date.now() - 5_000 });
    const backdated = await run(useInvitation(old, 'venus', id.idPub, old.body.exp - 1), old);
    assert.match(backdated.refused ?? '', /the invitation expired on .* \(by the anchor's clock\)/);

    assert.strictEqual(anchor.decided.length, 0, 'the policy never saw any of them');
    await waitFor('four refusals reported', () => anchor.rec.rejections.length === 4);
    for (const r of anchor.rec.rejections) assert.match(r.reason, /^enrolment refused: /);
  });

  it('an anchor without admin_pub, or without an admission of its own, refuses', async () => {
    const noAdmin = await startAnchor(cleanup, { admittedBy: admin, adminPub: null });
    const e1 = await refusal(enrol({ invitation: invite(admin, [noAdmin.addr]), node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.strictEqual(e1.code, 'NOT_ADMITTED');
    assert.strictEqual(e1.message, `cannot enrol: anchor ${noAdmin.addr} refused: this anchor has no admin_pub, so it cannot check invitations`);

    const notAdmitted = await startAnchor(cleanup, { admittedBy: undefined, adminPub: admin.pub });
    const e2 = await refusal(enrol({ invitation: invite(admin, [notAdmitted.addr]), node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.match(e2.message, /refused: this anchor cannot take enrolments now \(it has no admission of its own yet\)$/);
    assert.strictEqual(noAdmin.decided.length + notAdmitted.decided.length, 0);
  });

  it('refuses other paths, and /enrol on a transport without enrol hooks', async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    assert.strictEqual(await httpUpgrade(anchor.addr, '/foo'), 404);
    assert.strictEqual(await httpUpgrade(anchor.addr, '/enrol/x'), 404);
    await waitFor('reported', () => anchor.rec.rejections.length === 2);
    assert.ok(anchor.rec.rejections.every((r) => r.reason === 'WebSocket upgrade to an unknown path'));

    const plain = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub, enrol: false });
    assert.strictEqual(await httpUpgrade(plain.addr, ENROL_PATH), 404);
    const e = await refusal(enrol({ invitation: invite(admin, [plain.addr]), node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }));
    assert.strictEqual(e.code, 'PEER_AUTH_FAILED');
    assert.match(e.message, /answered HTTP 404 to \/enrol: not a hepto agent that takes enrolments/);
    // The gossip path, with or without a query, still works there.
    assert.strictEqual(await httpUpgrade(plain.addr, '/?x=1'), 101);
  });

  it("the listener's guards hold enrolment sockets: deadline, size, per-source cap", async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub, limits: { handshakeTimeoutMs: 400, maxPendingPerSource: 3 } });
    const [host, port] = [anchor.addr.split(':')[0], Number(anchor.addr.split(':')[1])];
    const open = (): Promise<{ ws: WebSocket; closed: Promise<number> }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${host}:${port}${ENROL_PATH}`, { perMessageDeflate: false });
        cleanup.add(() => ws.terminate());
        ws.on('error', () => undefined);
        const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
        ws.on('open', () => resolve({ ws, closed }));
        ws.on('close', () => reject(new Error('closed before open')));
      });

    // A client that says hello and then stalls is cut at the handshake timeout.
    const started = Date.now();
    const stalled = await open();
    const c = new EnrolClient({
      invitation: invite(admin, [anchor.addr]),
      identity: generateIdentity(Date.now()),
      use: useInvitation(invite(admin, [anchor.addr]), 'venus', generateIdentity(Date.now()).idPub, Date.now()),
      anchor: anchor.addr,
    });
    const gotAnchor = new Promise<void>((r) => stalled.ws.once('message', () => r()));
    stalled.ws.send(encodeEnrolMessage(c.hello()));
    await gotAnchor;
    await stalled.closed;
    assert.ok(Date.now() - started >= 350, 'not before the deadline');
    await waitFor('reported', () => anchor.rec.rejections.some((r) => r.reason === 'enrolment not finished within 400 ms'));

    // A message over 8 KiB is refused from its header.
    const big = await open();
    big.ws.send(Buffer.alloc(9 * 1024, 0x20));
    assert.strictEqual(await big.closed, 1009);
    await waitFor('reported', () => anchor.rec.rejections.some((r) => r.reason === 'enrolment refused: message larger than the enrolment limit of 8192 bytes'));

    // Garbage and a text frame: one-line reasons, sent to the client and reported.
    const junk = await open();
    const junkReply = new Promise<string>((r) => junk.ws.once('message', (d) => r(Buffer.from(d as Buffer).toString())));
    junk.ws.send(Buffer.from('{"t":"use","box":"AAAAAAAAAAAAAAAAAAAAAAAA"}'));
    assert.deepStrictEqual(JSON.parse(await junkReply), { t: 'refused', reason: 'a "use" message arrived out of order (expected "hello")' });
    assert.strictEqual(await junk.closed, 1008);
    const textFrame = await open();
    textFrame.ws.send('{"t":"hello"}');
    assert.strictEqual(await textFrame.closed, 1008);
    await waitFor('reported', () => anchor.rec.rejections.some((r) => r.reason === 'enrolment refused: text frame where only binary frames are allowed'));

    // Idle enrolment sockets count against the per-source cap like gossip handshakes.
    const idle = await Promise.all([open(), open(), open()]);
    await assert.rejects(open(), /closed before open/);
    await waitFor('capped', () => anchor.rec.rejections.some((r) => /too many unauthenticated sockets from 127\.0\.0\.1 \(limit 3\)/.test(r.reason)));
    await Promise.all(idle.map((s) => s.closed));
  });

  it('gossip on the same port keeps working alongside enrolments', async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    const peer = await startNode(cleanup, 'peer-1');
    await peer.t.send({ name: 'anchor-1', addresses: [anchor.addr] }, text('before'));
    const inv = invite(admin, [anchor.addr]);
    const [got] = await Promise.all([
      enrol({ invitation: inv, node: 'venus', identity: generateIdentity(Date.now()), now: Date.now }),
      peer.t.send({ name: 'anchor-1', addresses: [anchor.addr] }, text('during')),
    ]);
    assert.strictEqual(got.secrets.overlay_key, TEST_OVERLAY_KEY);
    await peer.t.send({ name: 'anchor-1', addresses: [anchor.addr] }, text('after'));
    await anchor.t.send({ name: 'peer-1', addresses: [] }, text('reply'));
    await waitFor('gossip both ways', () => anchor.rec.messages.length === 3 && peer.rec.messages.length === 1);
    assert.deepStrictEqual(
      anchor.rec.messages.map((m) => m.text),
      ['before', 'during', 'after'],
    );
    assert.strictEqual(anchor.t.stats().connections, 1, 'the enrolment never became a peer');
    assert.deepStrictEqual([...anchor.rec.disconnects, ...peer.rec.disconnects], []);
  });

  it('no secret on the wire in clear, nor in any log line, reason or error of either side', async () => {
    const anchor = await startAnchor(cleanup, { admittedBy: admin, adminPub: admin.pub });
    const refusing = await startAnchor(cleanup, {
      name: 'anchor-2',
      admittedBy: admin,
      adminPub: admin.pub,
      decide: () => ({ ok: false, reason: 'no more uses' }),
    });
    const proxy = new TcpProxy(anchor.addr);
    const via = await proxy.start(cleanup);
    const newcomer = generateIdentity(Date.now());
    const inv = makeInvitation(admin, { anchors: [refusing.addr, via], ttlMs: DAY, uses: 1 }, Date.now());
    const token = encodeInvitation(inv);
    const got = await enrol({ invitation: decodeInvitation(token, Date.now()), node: 'venus', identity: newcomer, now: Date.now });
    assert.strictEqual(got.anchor, via);
    const failed = await refusal(enrol({ invitation: decodeInvitation(token, Date.now()), node: 'venus', identity: newcomer, now: () => inv.body.exp }));
    const onlyRefusing = makeInvitation(admin, { anchors: [refusing.addr], ttlMs: DAY, uses: 1 }, Date.now());
    const failed2 = await refusal(enrol({ invitation: onlyRefusing, node: 'venus', identity: newcomer, now: Date.now }));
    assert.strictEqual(failed2.code, 'NOT_ADMITTED');
    const seed = Buffer.from(inv.secretKey.subarray(0, 32));
    const needles = [
      TEST_OVERLAY_KEY,
      SECRETS.agent_key!,
      SECRETS.cluster_key!,
      token,
      token.split('.')[3],
      seed.toString('base64'),
      Buffer.from(newcomer.secretKey).toString('base64'),
      Buffer.from(anchor.identity.secretKey).toString('base64'),
    ];
    const said = [
      ...anchor.logLines,
      ...refusing.logLines,
      ...[...anchor.rec.rejections, ...refusing.rec.rejections].map((r) => r.reason),
      failed.message,
      failed.describe(),
      failed2.describe(),
    ];
    assert.ok(said.length > 3);
    for (const line of said) {
      for (const n of needles) assert.ok(!line.includes(n), `no secret in: ${line}`);
      assert.ok(!line.includes('[redacted]'), `nothing even needed scrubbing: ${line}`);
    }
    const wire = Buffer.concat([proxy.all('c2s'), proxy.all('s2c')]);
    assert.ok(wire.length > 500, 'the proxy saw the enrolment');
    // The anchor's name, identity key and admission travel in clear, by design: they are what it proves.
    for (const n of [...needles, 'venus', newcomer.idPub, inv.body.id, inv.body.inv_pub]) {
      assert.ok(!wire.includes(n), `"${n.slice(0, 12)}…" must not be on the wire in clear`);
    }
  });
});
