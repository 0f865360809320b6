/**
 * Key rotation end to end (issue 13, docs/trust.md "Key rotation"): real
 * agents on 127.0.0.x with admin_pub, `hepto-agent rotate-keys` through the
 * CLI, one member off during the rotation. What keys.json, rotation.json,
 * status and raw handshakes under the old and the new overlay key show.
 * The longest silence between members around the switch is measured and
 * printed, never asserted.
 */
import { strict as assert } from 'assert';
import { existsSync, readFileSync, statSync } from 'fs';
import * as path from 'path';
import { AgentCluster, OVERLAY_KEY, waitFor, type AgentHandle } from '../../helpers/agent-cluster';
import { adminInit, admittedTrio, assertNoSecrets, cli, cliOutputs, member, show, stateDir, type AdminKeyFile } from '../../helpers/admin-cli';
import { loadOrCreateIdentity } from '../../../agent/net/identity';
import { WsTransport } from '../../../agent/net/ws-transport';
import { memoryLogger } from '../../helpers/memory-logger';
import type { AdmissionProof } from '../../../shared/member';
import type { StatusDoc } from '../../../shared/status';

interface KeysFile {
  version: number;
  base: string;
  rotation: { id: string; at: number; switch_at: number; grace_until: number };
  overlay_key: string;
  agent_key: string | null;
  previous: { overlay_key: string; agent_key: string | null };
}

function keysFile(a: AgentHandle): string {
  return path.join(stateDir(a), 'keys.json');
}

function readKeys(a: AgentHandle): KeysFile | undefined {
  try {
    return JSON.parse(readFileSync(keysFile(a), 'utf8')) as KeysFile;
  } catch {
    return undefined; // not there yet, or being replaced (atomic write)
  }
}

function rotateKeys(key: AdminKeyFile, on: AgentHandle, ...more: string[]): ReturnType<typeof cli> {
  return cli(['rotate-keys', ...more, '--admin-key', key.file, '--config', on.configFile]);
}

/** The rotation id rotate-keys printed on its first line. */
function rotationIdOf(out: string): string {
  const m = /^rotation ([A-Za-z0-9+/]{12}): /m.exec(out);
  assert.ok(m, `no rotation id in: ${out}`);
  return m[1] as string;
}

/**
 * Samples, every 100 ms, how long ago each watcher last heard each other
 * watcher (status last_seen): the longest silence seen is how long gossip
 * between them was interrupted (at most; a quiet mesh is silent for up to a
 * probe interval anyway).
 */
class SilenceWatch {
  readonly longest = new Map<string, number>();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly cluster: AgentCluster,
    private readonly watchers: AgentHandle[],
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      for (const w of this.watchers) {
        let doc: StatusDoc;
        try {
          doc = await this.cluster.status(w);
        } catch {
          continue;
        }
        for (const o of this.watchers) {
          if (o === w) continue;
          const m = member(doc, o.name);
          const silent = m && m.state !== 'dead' && m.state !== 'left' ? Date.now() - Date.parse(m.last_seen) : Infinity;
          const pair = `${w.name}→${o.name}`;
          this.longest.set(pair, Math.max(this.longest.get(pair) ?? 0, silent));
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<Map<string, number>> {
    this.running = false;
    await this.loop;
    return this.longest;
  }
}

/** Dials `target` from this process under `as`'s own name, identity and saved admission, with `overlayKey`: the error, or undefined when accepted. */
async function dialWithKey(as: AgentHandle, target: AgentHandle, overlayKey: string, host: string): Promise<unknown> {
  const identity = await loadOrCreateIdentity(stateDir(as), Date.now());
  const saved = JSON.parse(readFileSync(path.join(stateDir(as), 'admission.json'), 'utf8')) as AdmissionProof;
  const { logger } = memoryLogger('debug');
  const t = new WsTransport({
    overlayKey,
    identity,
    name: as.name,
    listen: { hosts: [host], port: 0 },
    bindAddress: host,
    logger,
    events: { message: () => undefined, disconnected: () => undefined, rejected: () => undefined, ownAdmission: () => ({ at: saved.at, sig: saved.sig }) },
  });
  await t.start();
  try {
    return await t.send({ addresses: [`${target.host}:${target.port}`] }, new Uint8Array([1])).then(
      () => undefined,
      (e: unknown) => e,
    );
  } finally {
    await t.stop();
  }
}

/**
 * The overlay key was taken: the dial worked, or the handshake completed and
 * the target then kept the real member's own connection instead (close code
 * 4000, CLOSE_SUPERSEDED), which it only does after the key opened the hello.
 */
function keyTaken(err: unknown): boolean {
  return err === undefined || (err instanceof Error && /\(code 4000\)/.test(err.message));
}

describe('key rotation: hepto-agent rotate-keys between real agents', function () {
  this.timeout(150000);
  let cluster: AgentCluster;
  beforeEach(() => {
    cluster = new AgentCluster();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
  });

  it('with gamma off: alpha and beta switch together at switch_at, gamma catches up when it returns within the grace', async () => {
    const key = adminInit(cluster);
    const { alpha, beta, gamma } = await admittedTrio(cluster, key);
    await cluster.kill(gamma, 'SIGTERM');
    await cluster.waitAllSee([alpha, beta], { gamma: 'left' }, 20000);

    const silence = new SilenceWatch(cluster, [alpha, beta]);
    const r = rotateKeys(key, alpha, '--switch-in', '6s', '--grace', '5m');
    assert.equal(r.code, 0, show(r));
    const id = rotationIdOf(r.out);
    assert.match(r.out, /sealed to 3 of 3 admitted members/);
    assert.match(r.out, /not live now, they get their keys when they return before the end of the grace: gamma \(left\)/);

    // Before the switch: both hold the new keys (0600), still pending.
    await waitFor('alpha and beta to keep the new keys', () => readKeys(alpha)?.rotation.id === id && readKeys(beta)?.rotation.id === id, 6000);
    const ka = readKeys(alpha)!;
    const kb = readKeys(beta)!;
    for (const a of [alpha, beta]) assert.equal(statSync(keysFile(a)).mode & 0o777, 0o600, `${a.name} keys.json mode`);
    assert.equal(ka.overlay_key, kb.overlay_key, 'alpha and beta got different overlay keys');
    assert.equal(ka.agent_key, kb.agent_key, 'alpha and beta got different agent keys');
    assert.notEqual(ka.overlay_key, OVERLAY_KEY);
    assert.equal(ka.overlay_key.length, 32);
    assert.equal(ka.previous.overlay_key, OVERLAY_KEY);
    const pending = await cluster.status(alpha);
    if (Date.now() < ka.rotation.switch_at - 500) assert.equal(pending.keys?.phase, 'pending', JSON.stringify(pending.keys));

    // At the switch: both move, and each one's record names the rotation.
    await waitFor(
      'alpha and beta to switch and show it',
      async () => {
        for (const w of [alpha, beta]) {
          const d = await cluster.status(w);
          if (d.keys?.phase !== 'grace' || member(d, 'alpha')?.keys !== id || member(d, 'beta')?.keys !== id) return false;
        }
        return true;
      },
      20000,
    );
    assert.ok(Date.now() >= ka.rotation.switch_at, 'switched before switch_at');
    // Gossip goes on over new connections too: wait a few probe rounds, both alive.
    await new Promise((res) => setTimeout(res, 3000));
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, 5000);
    const longest = await silence.stop();
    console.log(
      `      key rotation: longest gossip silence between live members around the switch: ${[...longest].map(([p, ms]) => `${p} ${ms} ms`).join(', ')}`,
    );
    for (const [pair, ms] of longest) assert.ok(Number.isFinite(ms), `${pair}: a member lost the other (dead or gone) during the rotation`);

    // A member that holds the new key is accepted under it; alpha's keys are never in a log.
    const underNew = await dialWithKey(beta, alpha, ka.overlay_key, '127.0.0.41');
    assert.ok(keyTaken(underNew), `alpha refuses beta under the new key: ${String(underNew)}`);

    // gamma returns with the old key only: accepted during the grace, gets its box, switches at once.
    assert.equal(readKeys(gamma), undefined, 'gamma got keys while it was off');
    cluster.start(gamma);
    await waitFor(
      'gamma to catch up on the rotation',
      async () => {
        const d = await cluster.status(gamma);
        return d.keys?.rotation === id && d.keys.phase === 'grace' && readKeys(gamma)?.overlay_key === ka.overlay_key;
      },
      45000,
    );
    await cluster.waitAllSee([alpha, beta, gamma], { alpha: 'alive', beta: 'alive', gamma: 'alive' }, 30000);
    await waitFor('alpha to see that gamma uses the new keys', async () => member(await cluster.status(alpha), 'gamma')?.keys === id, 20000);
    assert.equal(readKeys(gamma)!.agent_key, ka.agent_key);
    assert.equal(statSync(keysFile(gamma)).mode & 0o777, 0o600);
    // rotation.json keeps every box (sealed), so a restarted member can still serve a late one.
    await waitFor('alpha to keep the boxes', () => existsSync(path.join(stateDir(alpha), 'rotation.json')), 10000);

    assertNoSecrets(cluster, [key]);
    const texts = [cliOutputs.join('\n'), ...cluster.agents.map((a) => a.logs.join('\n'))];
    for (const t of texts) {
      assert.ok(!t.includes(ka.overlay_key), 'the new overlay key appears in a log or CLI output');
      assert.ok(!t.includes(String(ka.agent_key)), 'the new agent key appears in a log or CLI output');
    }
  });

  it('a removed member gets no box, and once the grace is over the old overlay key is refused, even from an admitted identity', async () => {
    const key = adminInit(cluster);
    const { alpha, beta, gamma } = await admittedTrio(cluster, key);
    let r = cli(['remove', 'gamma', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.out, /hepto-agent rotate-keys/);
    await waitFor(
      'alpha and beta to drop gamma',
      async () => !member(await cluster.status(alpha), 'gamma') && !member(await cluster.status(beta), 'gamma'),
      10000,
    );

    r = rotateKeys(key, alpha, '--switch-in', '5s', '--grace', '10s');
    assert.equal(r.code, 0, show(r));
    const id = rotationIdOf(r.out);
    assert.match(r.out, /sealed to 2 of 2 admitted members/);

    // During the grace the old key still opens alpha's door to an admitted identity.
    await waitFor('alpha to switch', async () => (await cluster.status(alpha)).keys?.phase === 'grace', 20000);
    const duringGrace = await dialWithKey(beta, alpha, OVERLAY_KEY, '127.0.0.42');
    assert.ok(keyTaken(duringGrace), `the old key is refused during the grace: ${String(duringGrace)}`);

    await waitFor('the grace to end on alpha', async () => (await cluster.status(alpha)).keys?.phase === 'done', 30000);
    const err = await dialWithKey(beta, alpha, OVERLAY_KEY, '127.0.0.43');
    assert.ok(err instanceof Error, 'alpha still takes the old overlay key after the grace');
    assert.match(err.message, /the peer rejected the handshake: probably a different overlay key/, err.message);
    // The new key works; gamma was never sent one and holds none.
    const underNew = await dialWithKey(beta, alpha, readKeys(alpha)!.overlay_key, '127.0.0.44');
    assert.ok(keyTaken(underNew), `alpha refuses the new key: ${String(underNew)}`);
    assert.equal(readKeys(gamma), undefined, 'the removed gamma got new keys');
    const boxes = (JSON.parse(readFileSync(path.join(stateDir(alpha), 'rotation.json'), 'utf8')) as { boxes: Array<{ node: string; id: string }> }).boxes;
    assert.deepEqual(boxes.map((b) => b.node).sort(), ['alpha', 'beta']);
    assert.ok(boxes.every((b) => b.id === id));
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, 10000);
  });
});
