/**
 * Helpers for end-to-end tests of the admin commands (`admin init`, `admit`,
 * `remove`) against real agents (agent-cluster.ts): running the CLI, reading
 * an agent's state files, and checking that no private key leaks into any
 * CLI output or agent log.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';
import { CLI, OVERLAY_KEY, waitFor, type AgentCluster, type AgentHandle } from './agent-cluster';
import { fingerprint, loadOrCreateIdentity } from '../../agent/net/identity';
import type { StatusDoc, MemberStatus } from '../../shared/status';

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** Every CLI output of this process, scanned for private keys by assertNoSecrets. */
export const cliOutputs: string[] = [];

export function cli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20000 });
  cliOutputs.push(r.stdout ?? '', r.stderr ?? '');
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

export function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`;
}

export interface AdminKeyFile {
  file: string;
  pub: string;
  priv: string;
}

/** `hepto-agent admin init` into the cluster's temp dir: the key file, its public half (last line of output) and its private field. */
export function adminInit(cluster: AgentCluster, name = 'admin.key'): AdminKeyFile {
  const file = path.join(cluster.root, name);
  const r = cli(['admin', 'init', '--admin-key', file]);
  assert.equal(r.code, 0, show(r));
  const pub = r.out.trimEnd().split('\n').pop()!;
  assert.match(pub, /^ed25519:[A-Za-z0-9+/]{43}=$/);
  const priv = (JSON.parse(readFileSync(file, 'utf8')) as { private: string }).private;
  return { file, pub, priv };
}

export function stateDir(a: AgentHandle): string {
  return path.join(String(a.config.storage_base), String(a.config.node));
}

export function identityFile(a: AgentHandle): string {
  return path.join(stateDir(a), 'identity.json');
}

export function admissionFile(a: AgentHandle): string {
  return path.join(stateDir(a), 'admission.json');
}

/** The agent's identity key in the `ed25519:` text form, from its identity file. */
export function identityKey(a: AgentHandle): string {
  return 'ed25519:' + (JSON.parse(readFileSync(identityFile(a), 'utf8')) as { public: string }).public;
}

export function fpOf(key: string): string {
  return fingerprint(key.slice('ed25519:'.length));
}

export function member(doc: StatusDoc, name: string): MemberStatus | undefined {
  return doc.members.find((m) => m.name === name);
}

export function admitCmd(node: string, key: string): string {
  return `hepto-agent admit ${node} --identity ${key}`;
}

/** The agent's JSON log lines, parsed. */
export function logObjects(a: AgentHandle): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of a.logs) {
    const i = line.indexOf('{');
    if (i < 0) continue;
    try {
      out.push(JSON.parse(line.slice(i)) as Record<string, unknown>);
    } catch {
      /* not a JSON line */
    }
  }
  return out;
}

/** No private key (admin keys, identities, overlay key) in any agent log line or CLI output so far. */
export function assertNoSecrets(cluster: AgentCluster, adminKeys: AdminKeyFile[]): void {
  const secrets: Array<[string, string]> = [['overlay key', OVERLAY_KEY]];
  for (const k of adminKeys) secrets.push([`admin key ${k.file}`, k.priv], [`admin key ${k.file} (seed part)`, k.priv.slice(0, 40)]);
  for (const a of cluster.agents) {
    if (existsSync(identityFile(a)))
      secrets.push([`identity of ${a.name}`, (JSON.parse(readFileSync(identityFile(a), 'utf8')) as { private: string }).private]);
  }
  const texts: Array<[string, string]> = [
    ['CLI output', cliOutputs.join('\n')],
    ...cluster.agents.map((a): [string, string] => [`log of ${a.name}`, a.logs.join('\n')]),
  ];
  for (const [where, text] of texts) {
    for (const [what, secret] of secrets) assert.ok(!text.includes(secret), `${what} appears in ${where}`);
  }
}

const TRIO_JOIN_MS = 45000;

/**
 * alpha (the admin machine, admitted with `admit alpha`), beta and gamma
 * (identities made beforehand, admitted with --identity before their first
 * start, anchored on alpha): all alive in every view, every admission shown
 * and saved.
 */
export async function admittedTrio(cluster: AgentCluster, key: AdminKeyFile): Promise<{ alpha: AgentHandle; beta: AgentHandle; gamma: AgentHandle }> {
  const alpha = cluster.add('alpha', { extra: { admin_pub: key.pub } });
  const beta = cluster.add('beta', { anchors: [alpha], extra: { admin_pub: key.pub } });
  const gamma = cluster.add('gamma', { anchors: [alpha], extra: { admin_pub: key.pub } });
  cluster.start(alpha);
  await cluster.waitStates(alpha, { alpha: 'alive' });
  let r = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
  assert.equal(r.code, 0, show(r));
  for (const a of [beta, gamma]) {
    await loadOrCreateIdentity(stateDir(a), Date.now());
    r = cli(['admit', a.name, '--identity', identityKey(a), '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    cluster.start(a);
  }
  const all = [alpha, beta, gamma];
  await cluster.waitAllSee(all, { alpha: 'alive', beta: 'alive', gamma: 'alive' }, TRIO_JOIN_MS);
  await waitFor(
    'every admission shown in every view and saved',
    async () => {
      for (const w of all) {
        const doc = await cluster.status(w);
        if (doc.members.length !== 3 || !doc.members.every((m) => m.admitted_at !== null)) return false;
      }
      return all.every((a) => existsSync(admissionFile(a)));
    },
    TRIO_JOIN_MS,
  );
  return { alpha, beta, gamma };
}
