/**
 * Removals end to end (issue 13, docs/trust.md "Pinned names"): real agents on
 * 127.0.0.x with admin_pub, `hepto-agent remove` through the CLI, and what the
 * views, status problems, handshakes and removals.json show. Real LAN timing
 * (join backoff 1 s up to 30 s, sync every 5 s), so waits are generous; no
 * sleep is an assertion.
 */
import { strict as assert } from 'assert';
import { existsSync, readFileSync, statSync } from 'fs';
import * as path from 'path';
import { AgentCluster, OVERLAY_KEY, waitFor, writeJson, type AgentHandle } from '../../helpers/agent-cluster';
import {
  admissionFile,
  adminInit,
  admitCmd,
  admittedTrio,
  assertNoSecrets,
  cli,
  fpOf,
  identityKey,
  logObjects,
  member,
  show,
  stateDir,
  type AdminKeyFile,
} from '../../helpers/admin-cli';
import { loadOrCreateIdentity } from '../../../agent/net/identity';
import { WsTransport } from '../../../agent/net/ws-transport';
import { isHeptoError } from '../../../shared/errors';
import { memoryLogger } from '../../helpers/memory-logger';
import type { AdmissionProof } from '../../../shared/member';

const JOIN_MS = 45000;
/** What a removed node's status says of a member that refused it (agent/net/send-errors.ts refusedByReason). */
const REMOVED_BY_PEER = 'it says the admin removed this identity from the cluster';

interface RemovalEntry {
  node: string;
  id_pub: string;
  at: number;
  sig: string;
}

function removalsFile(a: AgentHandle): string {
  return path.join(stateDir(a), 'removals.json');
}

/** The removals an agent keeps on disk; undefined while the file does not exist. */
function storedRemovals(a: AgentHandle): RemovalEntry[] | undefined {
  const file = removalsFile(a);
  if (!existsSync(file)) return undefined;
  const o = JSON.parse(readFileSync(file, 'utf8')) as { version: number; removals: RemovalEntry[] };
  assert.equal(o.version, 1, `${file} version`);
  assert.ok(Array.isArray(o.removals), `${file} removals`);
  return o.removals;
}

/** removals.json of `a` exists, is mode 0600 and holds a well-formed removal of `node` under identity `key`. */
function checkRemovalsFile(a: AgentHandle, node: string, key: string): RemovalEntry {
  const file = removalsFile(a);
  assert.equal(statSync(file).mode & 0o777, 0o600, `${file} mode`);
  const r = storedRemovals(a)!.find((x) => x.node === node);
  assert.ok(r, `${a.name}'s ${file} holds no removal of ${node}: ${readFileSync(file, 'utf8')}`);
  assert.equal('ed25519:' + r.id_pub, key);
  assert.ok(Number.isSafeInteger(r.at) && r.at > 0, `at ${r.at}`);
  assert.match(r.sig, /^[A-Za-z0-9+/]{86}==$/);
  return r;
}

function removalOnDisk(a: AgentHandle, node: string): boolean {
  try {
    return (storedRemovals(a) ?? []).some((r) => r.node === node);
  } catch {
    return false; // being replaced right now (atomic write): look again
  }
}

/** The problem in which the removed node says `peer` refused it as removed, with the admit command that would bring it back. */
function removedByProblem(problems: string[], peer: string, node: string, key: string): string | undefined {
  const head = new RegExp(`^"${peer}" at 127\\.0\\.0\\.\\d+ refused this node \\d+ times?: ${REMOVED_BY_PEER}; `);
  return problems.find((p) => head.test(p) && p.includes(admitCmd(node, key)));
}

/** The problem in which a member lists `node` (identity `key`) as refused because the admin removed it (either form, see admission.test.ts). */
function refusedAsRemoved(problems: string[], node: string, key: string): string | undefined {
  const head = new RegExp(
    `^refused (?:"${node}" at \\S+|\\d+ connections? from \\S+ \\(claiming to be "${node}"\\)): identity ${fpOf(key)} of "${node}" was removed by the admin; `,
  );
  return problems.find((p) => head.test(p) && p.includes(admitCmd(node, key)));
}

/**
 * Polls the views of `watchers` until stopped and notes every time one lists
 * `name` (in any state): a removed member must be gone from every view and
 * stay gone. A watcher that does not answer (restarting) is skipped.
 */
class AbsenceWatch {
  readonly seen: string[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly cluster: AgentCluster,
    private readonly watchers: AgentHandle[],
    private readonly name: string,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      for (const w of this.watchers) {
        try {
          const m = member(await this.cluster.status(w), this.name);
          if (m) this.seen.push(`${new Date().toISOString()} ${w.name} lists ${this.name} as ${m.state} (identity ${m.identity})`);
        } catch {
          /* not answering: restarting */
        }
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  async stop(): Promise<string[]> {
    this.running = false;
    await this.loop;
    return this.seen;
  }
}

/**
 * Dials `target` from this process under `node`'s own name and identity (read
 * from its identity file) showing its saved admission, like the real agent
 * does: what does `target` answer? (The real agent keeps running; a second
 * connection under its identity changes nothing for a member that refuses it.)
 */
async function dialAs(
  node: AgentHandle,
  target: AgentHandle,
  host: string,
): Promise<{ err: unknown; refusedBy: Array<{ remote: string; reason: string; peer?: string }> }> {
  const identity = await loadOrCreateIdentity(stateDir(node), Date.now());
  const saved = JSON.parse(readFileSync(admissionFile(node), 'utf8')) as { at: number; sig: string };
  const proof: AdmissionProof = { at: saved.at, sig: saved.sig };
  const refusedBy: Array<{ remote: string; reason: string; peer?: string }> = [];
  const { logger } = memoryLogger('debug');
  const t = new WsTransport({
    overlayKey: OVERLAY_KEY,
    identity,
    name: String(node.config.node),
    listen: { hosts: [host], port: 0 },
    bindAddress: host,
    logger,
    events: {
      message: () => undefined,
      disconnected: () => undefined,
      rejected: () => undefined,
      refusedBy: (i) => refusedBy.push(i),
      ownAdmission: () => proof,
    },
  });
  await t.start();
  try {
    const err = await t.send({ addresses: [`${target.host}:${target.port}`] }, new Uint8Array([1])).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(`${target.name} to refuse the connection`, () => err === undefined || refusedBy.length > 0, 5000).catch(() => undefined);
    return { err, refusedBy };
  } finally {
    await t.stop();
  }
}

function remove(key: AdminKeyFile, on: AgentHandle, node: string, ...more: string[]): ReturnType<typeof cli> {
  return cli(['remove', node, ...more, '--admin-key', key.file, '--config', on.configFile]);
}

describe('removals: hepto-agent remove between real agents', function () {
  this.timeout(120000);
  let cluster: AgentCluster;
  let watches: AbsenceWatch[] = [];
  beforeEach(() => {
    cluster = new AgentCluster();
    watches = [];
  });
  afterEach(async function () {
    await Promise.all(watches.map((w) => w.stop()));
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
  });

  it('remove gamma: every member drops it at once, keeps the removal (0600), refuses gamma while it runs, and after a restart', async () => {
    const key = adminInit(cluster);
    const { alpha, beta, gamma } = await admittedTrio(cluster, key);
    const gammaKey = identityKey(gamma);

    const r = remove(key, alpha, 'gamma');
    assert.equal(r.code, 0, show(r));
    assert.match(r.out, new RegExp(`^removed: gamma identity ${fpOf(gammaKey)}$`, 'm'));

    // Gossip (`x` updates): gone from both views within seconds, not at the next sync.
    await waitFor(
      'alpha and beta to drop gamma',
      async () => {
        for (const w of [alpha, beta]) if (member(await cluster.status(w), 'gamma')) return false;
        return true;
      },
      8000,
    );
    const watch = new AbsenceWatch(cluster, [alpha, beta], 'gamma');
    watches.push(watch);

    await waitFor('removals.json on alpha and beta', () => removalOnDisk(alpha, 'gamma') && removalOnDisk(beta, 'gamma'), 10000);
    const onAlpha = checkRemovalsFile(alpha, 'gamma', gammaKey);
    const onBeta = checkRemovalsFile(beta, 'gamma', gammaKey);
    assert.deepEqual(onBeta, onAlpha, 'beta keeps another removal than alpha made');
    assert.ok(Math.abs(onAlpha.at - Date.now()) < 60000, `removal at ${onAlpha.at}`);

    // gamma keeps running and keeps trying: both members refuse it, and its status says why, with the command that undoes it.
    const gammaDoc = await waitFor(
      'gamma to show that alpha and beta refused it as removed',
      async () => {
        const d = await cluster.status(gamma);
        return removedByProblem(d.problems, 'alpha', 'gamma', gammaKey) && removedByProblem(d.problems, 'beta', 'gamma', gammaKey) ? d : undefined;
      },
      JOIN_MS,
    );
    assert.notEqual(member(gammaDoc, 'alpha')?.state, 'alive');
    assert.notEqual(member(gammaDoc, 'beta')?.state, 'alive');
    await waitFor(
      'alpha to list gamma as refused because it was removed',
      async () => refusedAsRemoved((await cluster.status(alpha)).problems, 'gamma', gammaKey),
      JOIN_MS,
    );
    await waitFor('alpha to log the removal it got from the CLI', () =>
      logObjects(alpha).some((o) => o.msg === 'removal received from the control socket' && o.member === 'gamma' && o.result === 'removed'),
    );
    await waitFor('alpha and beta to log "member removed" for gamma', () =>
      [alpha, beta].every((w) => logObjects(w).some((o) => o.msg === 'member removed' && o.member === 'gamma')),
    );

    // beta restarts: it reloads removals.json and still refuses gamma.
    await cluster.kill(beta, 'SIGTERM');
    cluster.start(beta);
    await cluster.waitStates(beta, { alpha: 'alive', beta: 'alive' }, JOIN_MS);
    assert.equal(member(await cluster.status(beta), 'gamma'), undefined, 'restarted beta lists gamma');
    const probe = await dialAs(gamma, beta, '127.0.0.25');
    assert.ok(isHeptoError(probe.err) && probe.err.code === 'NOT_ADMITTED', `restarted beta accepted gamma's identity: ${String(probe.err)}`);
    assert.deepEqual(
      probe.refusedBy.map((x) => x.reason),
      [REMOVED_BY_PEER],
      'restarted beta did not close with 4003 "removed"',
    );
    assert.equal(probe.refusedBy[0]!.peer, 'beta');
    await waitFor(
      'restarted beta to list gamma as refused because it was removed',
      async () => refusedAsRemoved((await cluster.status(beta)).problems, 'gamma', gammaKey),
      10000,
    );
    checkRemovalsFile(beta, 'gamma', gammaKey);

    // Watch while gamma keeps retrying (join backoff 1, 2, 4, 8 s...): both refuse it again and again.
    await waitFor(
      'gamma to be refused by alpha and by the restarted beta at least 4 times each',
      async () => {
        const problems = (await cluster.status(gamma)).problems;
        return ['alpha', 'beta'].every(
          (peer) => Number(/refused this node (\d+) time/.exec(removedByProblem(problems, peer, 'gamma', gammaKey) ?? '')?.[1]) >= 4,
        );
      },
      JOIN_MS,
    );
    assert.ok(gamma.proc !== null, 'gamma stopped running');
    const seen = await watch.stop();
    assert.deepEqual(seen.slice(0, 5), [], 'a removed member came back into a view');
    assertNoSecrets(cluster, [key]);
  });

  it('a member that was off during the removal learns it when it comes back (anti-entropy)', async () => {
    const key = adminInit(cluster);
    const { alpha, beta, gamma } = await admittedTrio(cluster, key);
    const gammaKey = identityKey(gamma);

    await cluster.kill(beta, 'SIGTERM');
    await cluster.waitStates(alpha, { beta: 'left' });
    const r = remove(key, alpha, 'gamma');
    assert.equal(r.code, 0, show(r));
    await waitFor('alpha to drop gamma', async () => member(await cluster.status(alpha), 'gamma') === undefined, 8000);
    assert.equal(storedRemovals(beta), undefined, 'beta has a removals.json before it could learn one');

    cluster.start(beta);
    await cluster.waitStates(beta, { alpha: 'alive', beta: 'alive' }, JOIN_MS);
    // beta may meet gamma first (its saved peers); it must end up without it.
    await waitFor(
      'beta to learn the removal: gamma gone from its view and in its removals.json',
      async () => member(await cluster.status(beta), 'gamma') === undefined && removalOnDisk(beta, 'gamma'),
      JOIN_MS,
    );
    checkRemovalsFile(beta, 'gamma', gammaKey);
    assert.equal(member(await cluster.status(alpha), 'gamma'), undefined, 'alpha took gamma back from beta');
    assertNoSecrets(cluster, [key]);
  });

  it('a newer admission of the same identity brings a removed member back everywhere', async () => {
    const key = adminInit(cluster);
    const { alpha, beta, gamma } = await admittedTrio(cluster, key);
    const gammaKey = identityKey(gamma);

    let r = remove(key, alpha, 'gamma');
    assert.equal(r.code, 0, show(r));
    await waitFor(
      'alpha and beta to drop gamma',
      async () => {
        for (const w of [alpha, beta]) if (member(await cluster.status(w), 'gamma')) return false;
        return true;
      },
      8000,
    );
    await waitFor('gamma to show it was removed', async () => removedByProblem((await cluster.status(gamma)).problems, 'alpha', 'gamma', gammaKey), JOIN_MS);
    const removedAt = checkRemovalsFile(alpha, 'gamma', gammaKey).at;

    r = cli(['admit', 'gamma', '--identity', gammaKey, '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.out, new RegExp(`^admitted: gamma identity ${fpOf(gammaKey)}$`, 'm'));

    // gamma still shows its old admission (older than the removal): it could learn the new one only from a member that accepts it.
    const probe = await dialAs(gamma, alpha, '127.0.0.26');
    const refusedAfterAdmit =
      probe.err === undefined
        ? ''
        : `alpha still refuses gamma's identity, shown with its saved admission, after the new admission: ${String(probe.err)}; ${JSON.stringify(probe.refusedBy)}`;
    await cluster.waitAllSee([alpha, beta, gamma], { alpha: 'alive', beta: 'alive', gamma: 'alive' }, 60000).catch((e: Error) => {
      throw new Error(`${e.message}${refusedAfterAdmit ? `\n${refusedAfterAdmit}` : ''}`);
    });
    assert.equal(refusedAfterAdmit, '');
    const back = await waitFor(
      'every view to show gamma under its new admission',
      async () => {
        const docs = [await cluster.status(alpha), await cluster.status(beta), await cluster.status(gamma)];
        return docs.every((d) => Date.parse(member(d, 'gamma')?.admitted_at ?? '') > removedAt) ? docs : undefined;
      },
      JOIN_MS,
    );
    for (const d of back) assert.equal(member(d, 'gamma')!.identity_key, gammaKey);
    const gammaProblems = back[2]!.problems.filter((p) => /removed/.test(p));
    assert.deepEqual(gammaProblems, [], 'gamma still says it is removed');
    await waitFor('gamma to save its new admission', () => (JSON.parse(readFileSync(admissionFile(gamma), 'utf8')) as { at: number }).at > removedAt, JOIN_MS);
    assertNoSecrets(cluster, [key]);
  });

  it('remove errors: no admin_pub, no NODE, unknown NODE, bad --identity, wrong key, a removal the agent cannot verify; no private key anywhere', async () => {
    const key = adminInit(cluster);
    const other = adminInit(cluster, 'other.key');
    const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
    const solo = cluster.add('solo'); // no admin_pub, a cluster of its own
    const idle = cluster.add('idle', { extra: { admin_pub: key.pub } }); // never started
    cluster.start(alpha);
    cluster.start(solo);
    await cluster.waitStates(alpha, { alpha: 'alive' });
    await cluster.waitStates(solo, { solo: 'alive' });
    const alphaKey = identityKey(alpha);
    const soloKey = identityKey(solo);

    const noPub = remove(key, solo, 'solo');
    assert.equal(noPub.code, 1, show(noPub));
    assert.match(noPub.err, /no admin_pub/);
    const noPubId = remove(key, solo, 'ghost', '--identity', soloKey);
    assert.equal(noPubId.code, 1, show(noPubId));
    assert.match(noPubId.err, /admin_pub/);
    assert.equal(storedRemovals(solo), undefined, 'solo kept a removal it cannot check');

    const noNode = cli(['remove', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(noNode.code, 2, show(noNode));
    assert.match(noNode.err, /NODE/);
    const two = cli(['remove', 'alpha', 'beta', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(two.code, 2, show(two));
    const all = cli(['remove', 'alpha', '--all-current', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(all.code, 2, show(all));

    const ghost = remove(key, alpha, 'ghost');
    assert.equal(ghost.code, 2, show(ghost));
    assert.match(ghost.err, /ghost/);
    assert.match(ghost.err, /--identity/);

    const bad = remove(key, alpha, 'ghost', '--identity', 'ed25519:notbase64');
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.err, /--identity/);

    // The wrong admin key: the CLI checks it against admin_pub before asking the agent.
    const wrong = cli(['remove', 'ghost', '--identity', soloKey, '--admin-key', other.file, '--config', alpha.configFile]);
    assert.equal(wrong.code, 1, show(wrong));
    assert.match(wrong.err, /admin key .* is not the one this machine's admin_pub names/);

    // A config that names the other key as admin_pub but alpha's socket: the CLI signs, alpha itself refuses.
    const forged = path.join(cluster.root, 'forged.json');
    writeJson(forged, { ...alpha.config, admin_pub: other.pub });
    const refused = cli(['remove', 'ghost', '--identity', soloKey, '--admin-key', other.file, '--config', forged]);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.err, /refused the removal of ghost/);
    assert.match(refused.err, /admin_pub/);
    await waitFor('alpha to log the refused removal', () =>
      logObjects(alpha).some((o) => o.msg === 'removal received from the control socket' && o.member === 'ghost' && o.result === 'refused'),
    );
    assert.equal(storedRemovals(alpha), undefined, 'alpha kept a removal signed by another key');

    const down = cli(['remove', 'ghost', '--identity', alphaKey, '--admin-key', key.file, '--config', idle.configFile]);
    assert.equal(down.code, 3, show(down));

    // And ones that work (an unknown name with --identity), so the logs hold a removal too; again: still exit 0.
    const ok = remove(key, alpha, 'ghost', '--identity', soloKey);
    assert.equal(ok.code, 0, show(ok));
    assert.match(ok.out, new RegExp(`^removed: ghost identity ${fpOf(soloKey)}$`, 'm'));
    await waitFor('alpha removals.json', () => removalOnDisk(alpha, 'ghost'));
    checkRemovalsFile(alpha, 'ghost', soloKey);
    const again = remove(key, alpha, 'ghost', '--identity', soloKey);
    assert.equal(again.code, 0, show(again));
    assert.match(again.out, new RegExp(`^(already )?removed: ghost identity ${fpOf(soloKey)}$`, 'm'));
    assert.equal(storedRemovals(alpha)!.filter((x) => x.node === 'ghost').length, 1, 'two removals of one identity kept');
    assert.ok(member(await cluster.status(alpha), 'alpha'), 'alpha dropped itself');

    assertNoSecrets(cluster, [key, other]);
  });
});
