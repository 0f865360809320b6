/**
 * Whether the k3s server would open its existing datastore with the current
 * cluster_key. k3s encrypts its bootstrap data with the token it was first
 * started with, and writes `server/token` in its data dir as
 * `K10<ca-hash>::server:<password>`, where the password is that token (or
 * the password part of it, if it was given in this same K10 form). A
 * changed cluster_key makes the server fail at start with a message about
 * bootstrap data; this check says instead which field changed and what to do.
 *
 * Pure apart from reading the one file, through an injectable reader. Never
 * puts either token in a message.
 */
import { createHash, timingSafeEqual } from 'crypto';
import { promises as fs } from 'fs';
import path from 'path';
import { errnoCode } from '../../shared/errors';
import { containerName } from './specs';

export type TokenCheck = { ok: true } | { ok: false; problem: string };

/** Where the token file lives under k3s's data dir (specs.k3sDataDir on the host). */
export function serverTokenPath(dataDir: string): string {
  return path.join(dataDir, 'server', 'token');
}

/**
 * The password part of a token: what follows `<user>:` after the `::` of the
 * K10 form, or the whole (trimmed) text of a bare token.
 */
export function tokenPassword(token: string): string {
  const text = token.trim();
  const sep = text.indexOf('::');
  if (!text.startsWith('K10') || sep < 0) return text;
  const cred = text.slice(sep + 2);
  const colon = cred.indexOf(':');
  return colon < 0 ? cred : cred.slice(colon + 1);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  // Length differences show anyway; equal lengths compare in constant time.
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * `tokenFileText` is the content of server/token, or null when it does not
 * exist (no datastore yet: the server will create one with clusterKey).
 * `where` names the data dir and node, for the message only.
 */
export function checkServerToken(tokenFileText: string | null, clusterKey: string, where: { dataDir: string; node: string }): TokenCheck {
  // No file, or an empty one (a server killed before writing it), holds no token to disagree with.
  if (tokenFileText === null || tokenFileText.trim() === '') return { ok: true };
  if (sameSecret(tokenPassword(tokenFileText), tokenPassword(clusterKey))) return { ok: true };
  const container = containerName(where.node, 'k3s');
  return {
    ok: false,
    problem:
      `cluster_key changed, but the k3s datastore in ${where.dataDir} was created with another token: the server would not open it; ` +
      `put the old cluster_key back, or first rotate it inside the running server (podman exec -it ${container} k3s token rotate, with the old token as --token and the new one as --new-token), then set the new one`,
  };
}

export type ReadText = (file: string) => Promise<string>;

const readUtf8: ReadText = (file) => fs.readFile(file, 'utf8');

/**
 * Reads server/token under `dataDir` and checks it. A missing file (or data
 * dir) is a new datastore; any other read failure is reported, since the
 * server would likely fail on the same file.
 */
export async function checkServerTokenFile(dataDir: string, node: string, clusterKey: string, read: ReadText = readUtf8): Promise<TokenCheck> {
  const file = serverTokenPath(dataDir);
  let text: string | null;
  try {
    text = await read(file);
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      return {
        ok: false,
        problem: `cannot read ${file} (${code ?? 'I/O error'}) to check that cluster_key still opens the k3s datastore; check the file's permissions and the disk`,
      };
    }
    text = null;
  }
  return checkServerToken(text, clusterKey, { dataDir, node });
}

// ---------------------------------------------------------------- agent token
//
// The master's k3s server can take an agent token (`--agent-token-file`,
// docs/upstream.md K15, K25-K27): the password of user `node` in
// `server/cred/passwd`, which agents present instead of the server token.
// That file is part of the bootstrap data k3s keeps in its datastore, and k3s
// saves it there only when the datastore is made: a server whose `node`
// password changes on an existing datastore starts once, then fails at its
// next restart with "…/server/cred/passwd newer than datastore and could cause
// a cluster outage" (K28). So the agent token a server gets is the one its
// datastore already holds; agent_key only where that is agent_key, or where
// the datastore is new.

/** Where k3s keeps its users and passwords under its data dir (`server/cred/passwd`). */
export function serverPasswdPath(dataDir: string): string {
  return path.join(dataDir, 'server', 'cred', 'passwd');
}

/** The server's CA under its data dir, whose sha256 agents pin (K26). */
export function serverCaPath(dataDir: string): string {
  return path.join(dataDir, 'server', 'tls', 'server-ca.crt');
}

/**
 * The password of each user in k3s's passwd file: CSV records
 * `password,user,user,group` (Go's encoding/csv, so a field may be quoted).
 */
export function parsePasswd(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const fields: string[] = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') {
          cur += '"';
          i++;
        } else if (c === '"') quoted = false;
        else cur += c;
      } else if (c === '"' && cur === '') quoted = true;
      else if (c === ',') {
        fields.push(cur);
        cur = '';
      } else cur += c;
    }
    fields.push(cur);
    if (fields.length >= 2) out.set(fields[1], fields[0]);
  }
  return out;
}

/**
 * What the master's k3s server gets as its agent token: `token` is the
 * content of its `--agent-token-file` (null: no flag), `problem` a sentence
 * for status (null: none). Never holds a key in `problem`.
 */
export interface AgentTokenPlan {
  token: string | null;
  problem: string | null;
  /**
   * Key rotation: the server moves from the agent token its datastore holds
   * to agent_key, and the datastore must be re-synced once the server runs
   * with it (k3s-resync.ts; docs/upstream.md K28, K31-K34). Absent: no move.
   */
  rotating?: boolean;
}

/**
 * What a key rotation tells the planning: the agent token the datastore held
 * before it (previous_agent_key; null: none or unknown). Without it (null
 * as a whole) the datastore's agent token is never changed.
 */
export interface AgentTokenRotation {
  previous: string | null;
}

/** Why the next restart would fail, for the problems below (one phrase, docs/upstream.md K28). */
const NEXT_RESTART =
  'k3s saves its passwords in the datastore only when it makes it, so a server whose agent token changes starts once, then fails at its next restart with "…/server/cred/passwd newer than datastore and could cause a cluster outage" (docs/upstream.md K28)';

/**
 * Decides the server's agent token from its data dir: `tokenFileText` is
 * server/token (null or empty: no datastore yet), `passwd` the text of
 * server/cred/passwd, or that it is missing, or why it could not be read.
 * The server gets agent_key on a new datastore, or where the datastore's
 * `node` password already is agent_key; otherwise what the datastore holds
 * (nothing, or another agent token), with a problem when that is not agent_key.
 */
export function planAgentToken(
  tokenFileText: string | null,
  passwd: { text: string } | { missing: true } | { error: string },
  agentKey: string | null,
  where: { dataDir: string; node: string },
  rotation: AgentTokenRotation | null = null,
): AgentTokenPlan {
  // No datastore yet: it is made with agent_key (or with no agent token).
  if (tokenFileText === null || tokenFileText.trim() === '') return { token: agentKey, problem: null };
  const serverPassword = tokenPassword(tokenFileText);
  const file = serverPasswdPath(where.dataDir);
  const node = 'text' in passwd ? parsePasswd(passwd.text).get('node') : undefined;
  if (node === undefined) {
    // Not knowing what the datastore holds, the server is left without the flag, as before.
    if (agentKey === null) return { token: null, problem: null };
    const why = 'error' in passwd ? `cannot be read (${passwd.error})` : 'missing' in passwd ? 'is missing' : 'has no "node" user';
    return {
      token: null,
      problem:
        `agent_key is set, but ${file} ${why}, so whether the k3s datastore in ${where.dataDir} holds an agent token cannot be checked: ` +
        `the server keeps running without one (${NEXT_RESTART}), and machines that join with agent_key are refused until it has one; check that file`,
    };
  }
  if (agentKey !== null && sameSecret(node, agentKey)) return { token: agentKey, problem: null };
  // A key rotation moves the server from the datastore's agent token (the previous one, or none:
  // the server token's password) to agent_key; the supervisor then re-syncs the datastore.
  if (rotation !== null && agentKey !== null && ((rotation.previous !== null && sameSecret(node, rotation.previous)) || sameSecret(node, serverPassword))) {
    return { token: agentKey, problem: null, rotating: true };
  }
  // No agent token in the datastore: the node password is the server token's.
  if (sameSecret(node, serverPassword)) {
    if (agentKey === null) return { token: null, problem: null };
    return {
      token: null,
      problem:
        `agent_key is set, but the k3s datastore in ${where.dataDir} was made without an agent token, and ${NEXT_RESTART}: ` +
        'so the server keeps running without it, and the other machines still need cluster_key (the server token) to join k3s; ' +
        "to give it one, run hepto-agent rotate-keys on the machine with the admin key: every member gets a new agent_key, and the master's server takes it (its datastore re-synced)",
    };
  }
  // The datastore holds another agent token: the server keeps it.
  if (agentKey === null) {
    return {
      token: node,
      problem:
        `agent_key is not set, but the k3s datastore in ${where.dataDir} holds an agent token, and ${NEXT_RESTART}: ` +
        "so the server keeps it; put the agent_key it was made with back in this machine's config",
    };
  }
  return {
    token: node,
    problem:
      `agent_key changed, but the k3s datastore in ${where.dataDir} holds another agent token, and ${NEXT_RESTART}: ` +
      'so the server keeps the old one, and machines that join with the new agent_key are refused; put the old agent_key back on every machine, or change it on every machine at once with hepto-agent rotate-keys',
  };
}

/**
 * Reads server/token and server/cred/passwd under `dataDir`, in that order
 * (k3s writes passwd before the token, so a token seen means a passwd
 * written), and plans the server's agent token.
 */
export async function planAgentTokenFile(
  dataDir: string,
  node: string,
  agentKey: string | null,
  read: ReadText = readUtf8,
  rotation: AgentTokenRotation | null = null,
): Promise<AgentTokenPlan> {
  let token: string | null = null;
  try {
    token = await read(serverTokenPath(dataDir));
  } catch (e) {
    const code = errnoCode(e);
    // checkServerTokenFile reports a token file it cannot read; without it nothing can be judged.
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return { token: null, problem: null };
  }
  let passwd: { text: string } | { missing: true } | { error: string };
  try {
    passwd = { text: await read(serverPasswdPath(dataDir)) };
  } catch (e) {
    const code = errnoCode(e);
    passwd = code === 'ENOENT' || code === 'ENOTDIR' ? { missing: true } : { error: code ?? 'I/O error' };
  }
  return planAgentToken(token, passwd, agentKey, { dataDir, node }, rotation);
}

/** The `node` password (the agent token) in server/cred/passwd under `dataDir`; null when unknown. */
export async function readNodePassword(dataDir: string, read: ReadText = readUtf8): Promise<string | null> {
  try {
    return parsePasswd(await read(serverPasswdPath(dataDir))).get('node') ?? null;
  } catch {
    return null;
  }
}

/** The agent token in k3s's secure format, pinned to the server CA's hash (docs/upstream.md K26). */
export function secureAgentToken(caHash: string, agentKey: string): string {
  return `K10${caHash}::node:${agentKey}`;
}

/**
 * The sha256 (lowercase hex) of the server CA file under `dataDir`, as k3s
 * computes it for a CA bundle of one self-signed certificate (K26); null
 * while the file does not exist or is empty.
 */
export async function readServerCaHash(dataDir: string, readBytes: (file: string) => Promise<Buffer> = (f) => fs.readFile(f)): Promise<string | null> {
  try {
    const bytes = await readBytes(serverCaPath(dataDir));
    return bytes.length > 0 ? createHash('sha256').update(bytes).digest('hex') : null;
  } catch {
    return null;
  }
}
