/**
 * Pinned names end to end (issue 13): real agents on 127.0.0.x with admin_pub,
 * `hepto-agent admit` through the CLI, and what status, logs and the
 * admission files show. The agents run real LAN timing (join backoff from
 * 1 s up to 30 s), so waits are generous; no sleep is an assertion.
 */
import { strict as assert } from 'assert';
import { existsSync, readFileSync, statSync, unlinkSync } from 'fs';
import { AgentCluster, OVERLAY_KEY, waitFor, writeJson, type AgentHandle } from '../../helpers/agent-cluster';
import {
  admissionFile,
  adminInit,
  admitCmd,
  assertNoSecrets,
  cli,
  cliOutputs,
  fpOf,
  identityFile,
  identityKey,
  logObjects,
  member,
  show,
  stateDir,
  type AdminKeyFile,
} from '../../helpers/admin-cli';
import { generateIdentity, loadOrCreateIdentity } from '../../../agent/net/identity';
import { WsTransport } from '../../../agent/net/ws-transport';
import { CLOSE_NOT_ADMITTED } from '../../../agent/net/ws-connection';
import { isHeptoError } from '../../../shared/errors';
import { memoryLogger } from '../../helpers/memory-logger';
import type { StatusDoc } from '../../../shared/status';

const JOIN_MS = 45000;

/**
 * The problem in which a member lists `node` with identity `key` as refused.
 * Two forms exist: the member-level one (`refused "beta" at ADDR: ...`, from
 * gossip/admissions.ts) and the connection-level one that a refused handshake
 * gives (`refused N connections from HOST (claiming to be "beta"): ...`,
 * daemon/agent.ts). Either must name the fingerprint and the exact admit command.
 */
function refusalOf(problems: string[], node: string, key: string): string | undefined {
  const head = new RegExp(
    `^refused (?:"${node}" at \\S+|\\d+ connections? from \\S+ \\(claiming to be "${node}"\\)): identity ${fpOf(key)} of "${node}" is not admitted; `,
  );
  return problems.find((p) => head.test(p) && p.includes(admitCmd(node, key)));
}

/** An agent whose node name differs from its handle's (an impostor, say), with its own dir and storage. */
function addAs(cluster: AgentCluster, handle: string, node: string, opts: Parameters<AgentCluster['add']>[1]): AgentHandle {
  const a = cluster.add(handle, opts);
  a.config.node = node;
  writeJson(a.configFile, a.config);
  return a;
}

/** Rewrites an agent's config file with extra fields (the agent reads it at its next start). */
function reconfigure(a: AgentHandle, patch: Record<string, unknown>): void {
  Object.assign(a.config, patch);
  writeJson(a.configFile, a.config);
}

/** The admission file exists, is mode 0600, and binds this agent's name to its identity. */
function checkAdmissionFile(a: AgentHandle): { at: number } {
  const file = admissionFile(a);
  assert.equal(statSync(file).mode & 0o777, 0o600, `${file} mode`);
  const o = JSON.parse(readFileSync(file, 'utf8')) as { version: number; node: string; id_pub: string; at: number; sig: string };
  assert.equal(o.version, 1);
  assert.equal(o.node, a.config.node);
  assert.equal('ed25519:' + o.id_pub, identityKey(a));
  assert.ok(Number.isSafeInteger(o.at) && o.at > 0, `at ${o.at}`);
  assert.match(o.sig, /^[A-Za-z0-9+/]{86}==$/);
  return { at: o.at };
}

/**
 * alpha (admitted with `admit alpha`) and beta (admitted with --identity
 * before its first start, its identity made beforehand), both alive and both
 * showing their admission everywhere.
 */
async function admittedPair(cluster: AgentCluster, key: AdminKeyFile): Promise<{ alpha: AgentHandle; beta: AgentHandle }> {
  const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
  const beta = cluster.add('beta', { anchors: [alpha], extra: { admin_pub: key.pub } });
  cluster.start(alpha);
  await cluster.waitStates(alpha, { alpha: 'alive' });
  let r = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
  assert.equal(r.code, 0, show(r));
  await loadOrCreateIdentity(stateDir(beta), Date.now());
  r = cli(['admit', 'beta', '--identity', identityKey(beta), '--admin-key', key.file, '--config', alpha.configFile]);
  assert.equal(r.code, 0, show(r));
  cluster.start(beta);
  await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, JOIN_MS);
  await waitFor(
    'both admissions shown in both views',
    async () => {
      for (const w of [alpha, beta]) {
        const doc = await cluster.status(w);
        if (!doc.members.every((m) => m.admitted_at !== null)) return false;
      }
      return existsSync(admissionFile(alpha)) && existsSync(admissionFile(beta));
    },
    JOIN_MS,
  );
  return { alpha, beta };
}

describe('pinned names: admissions between real agents', function () {
  this.timeout(120000);
  let cluster: AgentCluster;
  beforeEach(() => (cluster = new AgentCluster()));
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
  });

  it('round trip: an unadmitted node is refused and told the admit command; once admitted, both see each other alive', async () => {
    const key = adminInit(cluster);
    const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
    const beta = cluster.add('beta', { anchors: [alpha], extra: { admin_pub: key.pub } });
    cluster.start(alpha);
    await cluster.waitStates(alpha, { alpha: 'alive' });
    const alphaKey = identityKey(alpha);

    let doc = await cluster.status(alpha);
    assert.equal(member(doc, 'alpha')!.admitted_at, null);
    assert.ok(
      doc.problems.some((p) => p.startsWith('this node has no admission') && p.includes(admitCmd('alpha', alphaKey))),
      JSON.stringify(doc.problems),
    );

    const r = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.out, new RegExp(`admitted: alpha identity ${fpOf(alphaKey)}`));
    doc = await waitFor('alpha to show its own admission', async () => {
      const d = await cluster.status(alpha);
      return member(d, 'alpha')?.admitted_at ? d : undefined;
    });
    const self = member(doc, 'alpha')!;
    assert.equal(self.self, true);
    assert.equal(self.identity_key, alphaKey);
    assert.equal(self.identity, fpOf(alphaKey));
    assert.ok(!Number.isNaN(Date.parse(self.admitted_at!)), self.admitted_at!);
    assert.ok(!doc.problems.some((p) => p.includes('has no admission')), JSON.stringify(doc.problems));
    await waitFor('alpha admission.json', () => existsSync(admissionFile(alpha)));
    const alphaAdm = checkAdmissionFile(alpha);
    assert.equal(new Date(alphaAdm.at).toISOString(), self.admitted_at);

    // beta has no admission: alpha refuses it, and both say what to do.
    cluster.start(beta);
    const betaKey = await waitFor('beta status', async () => member(await cluster.status(beta), 'beta')?.identity_key);
    assert.equal(betaKey, identityKey(beta));
    let joinedEarly = '';
    const refusedDoc = await waitFor(
      'alpha to list beta as refused',
      async () => {
        const [a, b] = [await cluster.status(alpha), await cluster.status(beta)];
        if (member(a, 'beta')?.state === 'alive') joinedEarly ||= `alpha sees beta alive: ${JSON.stringify(a.members)}`;
        if (member(b, 'alpha')?.state === 'alive') joinedEarly ||= `beta sees alpha alive: ${JSON.stringify(b.members)}`;
        return joinedEarly || refusalOf(a.problems, 'beta', betaKey) ? a : undefined;
      },
      JOIN_MS,
    );
    assert.equal(joinedEarly, '');
    assert.notEqual(member(refusedDoc, 'beta')?.state, 'alive');

    const betaDoc = await waitFor(
      'beta to show it is refused',
      async () => {
        const d = await cluster.status(beta);
        const own = d.problems.some((p) => p.startsWith('this node has no admission') && p.includes(admitCmd('beta', betaKey)));
        const by = d.problems.some((p) => /^"alpha" at 127\.0\.0\.10 refused this node \d+ times?: /.test(p) && p.includes(admitCmd('beta', betaKey)));
        return own && by ? d : undefined;
      },
      JOIN_MS,
    );
    assert.equal(member(betaDoc, 'beta')!.admitted_at, null);
    assert.notEqual(member(betaDoc, 'alpha')?.state, 'alive');
    const warn = await waitFor('beta to log that a peer refused it', () =>
      logObjects(beta).find(
        (o) => o.level === 'warn' && o.msg === 'a peer refused this node' && /does not admit our identity under our name/.test(String(o.reason)),
      ),
    );
    assert.equal(warn.fix, `on the machine with the admin key, run: ${admitCmd('beta', betaKey)}`);
    assert.ok(!existsSync(admissionFile(beta)), 'beta saved an admission it does not have');

    // The admin admits beta with the key beta's status shows.
    const r2 = cli(['admit', 'beta', '--identity', betaKey, '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r2.code, 0, show(r2));
    assert.match(r2.out, new RegExp(`admitted: beta identity ${fpOf(betaKey)}`));
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, JOIN_MS);
    const both = await waitFor(
      'both to show both admissions',
      async () => {
        const ds = [await cluster.status(alpha), await cluster.status(beta)];
        return ds.every((d) => d.members.every((m) => m.admitted_at !== null)) ? ds : undefined;
      },
      JOIN_MS,
    );
    for (const d of both) {
      assert.equal(member(d, 'beta')!.identity_key, betaKey);
      assert.equal(member(d, 'alpha')!.identity_key, alphaKey);
    }
    await waitFor('beta admission.json', () => existsSync(admissionFile(beta)), JOIN_MS);
    const betaAdm = checkAdmissionFile(beta);
    assert.equal(new Date(betaAdm.at).toISOString(), member(both[0], 'beta')!.admitted_at);
    assert.ok(!both[1].problems.some((p) => p.includes('has no admission')), JSON.stringify(both[1].problems));

    const json = cli(['status', '--json', '--config', beta.configFile]);
    assert.equal(json.code, 0, show(json));
    const viaCli = JSON.parse(json.out) as StatusDoc;
    assert.equal(member(viaCli, 'beta')!.self, true);
    assert.equal(member(viaCli, 'beta')!.identity_key, betaKey);
    assertNoSecrets(cluster, [key]);
  });

  it('a handshake under an unadmitted identity is closed with 4003 (NOT_ADMITTED) and listed as refused', async () => {
    const key = adminInit(cluster);
    const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
    cluster.start(alpha);
    await cluster.waitStates(alpha, { alpha: 'alive' });
    const r = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));

    // A stranger holding the overlay key, under the name "beta", in this process.
    const id = generateIdentity(Date.now());
    const strangerKey = 'ed25519:' + id.idPub;
    const refusedBy: Array<{ remote: string; reason: string; peer?: string }> = [];
    const { logger } = memoryLogger('debug');
    const t = new WsTransport({
      overlayKey: OVERLAY_KEY,
      identity: id,
      name: 'beta',
      listen: { hosts: ['127.0.0.15'], port: 0 },
      bindAddress: '127.0.0.15',
      logger,
      events: { message: () => undefined, disconnected: () => undefined, rejected: () => undefined, refusedBy: (i) => refusedBy.push(i) },
    });
    await t.start();
    try {
      assert.equal(CLOSE_NOT_ADMITTED, 4003);
      const err = await t.send({ addresses: [`${alpha.host}:${alpha.port}`] }, new Uint8Array([1])).then(
        () => assert.fail('alpha accepted an unadmitted identity'),
        (e: unknown) => e,
      );
      assert.ok(isHeptoError(err) && err.code === 'NOT_ADMITTED', String(err));
      assert.match((err as Error).message, /it does not admit our identity under our name/);
      await waitFor('the transport to report that alpha refused us', () => refusedBy.length > 0, 5000);
      assert.equal(refusedBy.length, 1, JSON.stringify(refusedBy));
      assert.equal(refusedBy[0].peer, 'alpha');
    } finally {
      await t.stop();
    }
    await waitFor('alpha to list the stranger as refused', async () => refusalOf((await cluster.status(alpha)).problems, 'beta', strangerKey));
    assert.equal(member(await cluster.status(alpha), 'beta'), undefined);
    assertNoSecrets(cluster, [key]);
  });

  it('refusal problems advise only the admit command, and go away once the node is admitted and alive', async () => {
    const key = adminInit(cluster);
    const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
    const beta = cluster.add('beta', { anchors: [alpha], extra: { admin_pub: key.pub } });
    cluster.start(alpha);
    await cluster.waitStates(alpha, { alpha: 'alive' });
    let r = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    cluster.start(beta);
    const betaKey = await waitFor('beta status', async () => member(await cluster.status(beta), 'beta')?.identity_key);
    const refusal = await waitFor('alpha to list beta as refused', async () => refusalOf((await cluster.status(alpha)).problems, 'beta', betaKey), JOIN_MS);
    const wrong: string[] = [];
    // The fix for an identity that is not admitted is the admit command; "rename one of them" contradicts it.
    if (/rename/.test(refusal)) wrong.push(`alpha's refusal problem advises a rename: ${refusal}`);

    r = cli(['admit', 'beta', '--identity', betaKey, '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, JOIN_MS);
    await waitFor('beta to show its admission', async () => member(await cluster.status(beta), 'beta')?.admitted_at, JOIN_MS);
    // Admitted and alive on both sides: nothing left to do, so no problem may still tell the admin to admit beta.
    for (const a of [alpha, beta]) {
      const stale = (await cluster.status(a)).problems.filter((p) => p.includes(admitCmd('beta', betaKey)));
      if (stale.length > 0) wrong.push(`${a.name} still lists, with beta admitted and alive: ${JSON.stringify(stale)}`);
    }
    assert.deepEqual(wrong, []);
  });

  it('a restart never frees a name: an impostor is refused while beta is left, and the real beta comes back', async () => {
    const key = adminInit(cluster);
    const { alpha, beta } = await admittedPair(cluster, key);
    const realKey = identityKey(beta);
    const realFp = fpOf(realKey);

    await cluster.kill(beta, 'SIGTERM');
    await cluster.waitStates(alpha, { beta: 'left' });

    const impostor = addAs(cluster, 'beta-impostor', 'beta', { anchors: [alpha], host: '127.0.0.13', extra: { admin_pub: key.pub } });
    cluster.start(impostor);
    const fakeKey = await waitFor('the impostor status', async () => member(await cluster.status(impostor), 'beta')?.identity_key);
    assert.notEqual(fakeKey, realKey);
    let taken = '';
    await waitFor(
      'alpha to refuse the impostor',
      async () => {
        const d = await cluster.status(alpha);
        const b = member(d, 'beta');
        if (b?.state !== 'left' || b.identity !== realFp) taken ||= JSON.stringify(b);
        return taken !== '' || refusalOf(d.problems, 'beta', fakeKey) !== undefined;
      },
      JOIN_MS,
    );
    assert.equal(taken, '', 'alpha let the impostor take the name');
    const d = await cluster.status(alpha);
    assert.equal(member(d, 'beta')!.state, 'left');
    assert.equal(member(d, 'beta')!.identity, realFp);
    assert.equal(member(d, 'beta')!.identity_key, realKey);
    assert.notEqual(member(await cluster.status(impostor), 'alpha')?.state, 'alive');

    // The real beta, same storage: its saved admission gets it back in.
    cluster.start(beta);
    const back = await cluster.waitStates(alpha, { beta: 'alive' }, JOIN_MS);
    assert.equal(member(back, 'beta')!.identity, realFp);
    assert.notEqual(member(back, 'beta')!.admitted_at, null);
    const own = await cluster.waitStates(beta, { alpha: 'alive', beta: 'alive' }, JOIN_MS);
    assert.notEqual(member(own, 'beta')!.admitted_at, null);
    assert.equal(member(own, 'beta')!.identity, realFp);

    // With nobody to learn it from (alpha down, impostor gone), beta shows its admission from admission.json alone.
    const saved = checkAdmissionFile(beta);
    await Promise.all([cluster.kill(impostor, 'SIGTERM'), cluster.kill(alpha, 'SIGTERM'), cluster.kill(beta, 'SIGTERM')]);
    cluster.start(beta);
    const alone = await waitFor('beta to answer alone', async () => cluster.status(beta));
    assert.notEqual(member(alone, 'alpha')?.state, 'alive');
    assert.equal(member(alone, 'beta')!.admitted_at, new Date(saved.at).toISOString());
    assert.ok(!alone.problems.some((p) => p.includes('has no admission')), JSON.stringify(alone.problems));
    assertNoSecrets(cluster, [key]);
  });

  it('a reinstalled machine is refused until the admin admits its new identity', async () => {
    const key = adminInit(cluster);
    const { alpha, beta } = await admittedPair(cluster, key);
    const oldKey = identityKey(beta);

    await cluster.kill(beta, 'SIGTERM');
    await cluster.waitStates(alpha, { beta: 'left' });
    unlinkSync(identityFile(beta));
    unlinkSync(admissionFile(beta));
    cluster.start(beta);
    const newKey = await waitFor('the reinstalled beta status', async () => member(await cluster.status(beta), 'beta')?.identity_key);
    assert.notEqual(newKey, oldKey);

    let joinedEarly = '';
    await waitFor(
      'alpha to refuse the new identity',
      async () => {
        const d = await cluster.status(alpha);
        if (member(d, 'beta')?.state === 'alive') joinedEarly ||= JSON.stringify(member(d, 'beta'));
        return joinedEarly !== '' || refusalOf(d.problems, 'beta', newKey) !== undefined;
      },
      JOIN_MS,
    );
    assert.equal(joinedEarly, '', 'alpha took the reinstalled beta before its admission');
    const betaDoc = await cluster.status(beta);
    assert.ok(
      betaDoc.problems.some((p) => p.includes(admitCmd('beta', newKey))),
      JSON.stringify(betaDoc.problems),
    );

    const r = cli(['admit', 'beta', '--identity', newKey, '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    await waitFor(
      'alpha to see the new beta alive',
      async () => {
        const b = member(await cluster.status(alpha), 'beta');
        return b?.state === 'alive' && b.identity === fpOf(newKey) && b.admitted_at !== null;
      },
      JOIN_MS,
    );
    await cluster.waitStates(beta, { alpha: 'alive' }, JOIN_MS);
    await waitFor('the new admission.json', () => existsSync(admissionFile(beta)), JOIN_MS);
    checkAdmissionFile(beta);
    assertNoSecrets(cluster, [key]);
  });

  it('admit --all-current before admin_pub, then admin_pub everywhere: still one cluster, nothing unadmitted', async () => {
    const key = adminInit(cluster);
    const alpha = cluster.add('alpha');
    const beta = cluster.add('beta', { anchors: [alpha] });
    cluster.start(alpha);
    cluster.start(beta);
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, JOIN_MS);

    const r = cli(['admit', '--all-current', '--config', alpha.configFile, '--admin-key', key.file]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.out, new RegExp(`admitted: alpha identity ${fpOf(identityKey(alpha))}`));
    assert.match(r.out, new RegExp(`admitted: beta identity ${fpOf(identityKey(beta))}`));
    assert.match(r.out, /2 of 2 admissions handed to the agent/);
    await waitFor('both admission.json files', () => existsSync(admissionFile(alpha)) && existsSync(admissionFile(beta)), JOIN_MS);
    checkAdmissionFile(alpha);
    checkAdmissionFile(beta);

    // Run again: nothing left to admit.
    const again = await waitFor(
      'a second --all-current to find nothing to do',
      () => {
        const x = cli(['admit', '--all-current', '--config', alpha.configFile, '--admin-key', key.file]);
        return x.code === 0 && /nothing to admit/.test(x.out) ? x : undefined;
      },
      JOIN_MS,
      1000,
    );
    assert.match(again.out, /2 live members already show an admission/);

    for (const a of [alpha, beta]) reconfigure(a, { admin_pub: key.pub });
    await Promise.all([cluster.kill(alpha, 'SIGTERM'), cluster.kill(beta, 'SIGTERM')]);
    cluster.start(alpha);
    cluster.start(beta);
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, JOIN_MS);
    for (const a of [alpha, beta]) {
      const d = await cluster.status(a);
      for (const m of d.members) assert.notEqual(m.admitted_at, null, `${a.name} sees ${m.name} without admission`);
      assert.ok(!d.problems.some((p) => /no admission|refused|admin_pub\) is configured/.test(p)), `${a.name}: ${JSON.stringify(d.problems)}`);
    }
    assertNoSecrets(cluster, [key]);
  });

  it('admit errors: wrong admin key, no NODE, unknown NODE, bad --identity, no agent; no private key anywhere', async () => {
    const key = adminInit(cluster);
    const other = adminInit(cluster, 'other.key');
    const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
    const idle = cluster.add('idle', { extra: { admin_pub: key.pub } });
    cluster.start(alpha);
    await cluster.waitStates(alpha, { alpha: 'alive' });
    const alphaKey = identityKey(alpha);

    const wrong = cli(['admit', 'alpha', '--admin-key', other.file, '--config', alpha.configFile]);
    assert.equal(wrong.code, 1, show(wrong));
    assert.match(wrong.err, /admin_pub/);
    assert.match(wrong.err, /ADMIN_KEY|admin key/);
    assert.equal(member(await cluster.status(alpha), 'alpha')!.admitted_at, null, 'a refused admit changed the agent');

    const noNode = cli(['admit', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(noNode.code, 2, show(noNode));
    assert.match(noNode.err, /NODE/);

    const both = cli(['admit', 'alpha', '--all-current', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(both.code, 2, show(both));

    const ghost = cli(['admit', 'ghost', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(ghost.code, 2, show(ghost));
    assert.match(ghost.err, /ghost/);
    assert.match(ghost.err, /--identity/);

    const bad = cli(['admit', 'beta', '--identity', 'ed25519:notbase64', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.err, /--identity/);

    const down = cli(['admit', 'idle', '--identity', alphaKey, '--admin-key', key.file, '--config', idle.configFile]);
    assert.equal(down.code, 3, show(down));
    const downAll = cli(['admit', '--all-current', '--admin-key', key.file, '--config', idle.configFile]);
    assert.equal(downAll.code, 3, show(downAll));

    // And one that works, so the logs hold an admission too.
    const ok = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(ok.code, 0, show(ok));
    await waitFor('alpha admission.json', () => existsSync(admissionFile(alpha)));
    await waitFor('alpha to log the admission', () =>
      logObjects(alpha).some((o) => o.msg === 'admission received from the control socket' && o.member === 'alpha' && o.result === 'admitted'),
    );
    // Every CLI output of this file so far (all tests) and every log line of this cluster.
    assertNoSecrets(cluster, [key, other]);
    assert.ok(cliOutputs.length > 10);
  });
});
