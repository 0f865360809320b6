/**
 * Re-syncing the master's k3s datastore after its agent token changed (key
 * rotation, issue 13).
 *
 * k3s keeps `server/cred/passwd` (whose `node` password is the agent token)
 * in its datastore too, and saves it there only when the datastore is made.
 * A server given a new agent token rewrites passwd on disk at its next start,
 * and fails at the start after that with "…/server/cred/passwd newer than
 * datastore…" (docs/upstream.md K28). What saves the bootstrap data again
 * with override is the supervisor endpoint `PUT /v1-k3s/token`, which
 * `k3s token rotate` calls (K31-K33). Given as new token the server's current
 * password, it changes no token and re-saves the files on disk, passwd with
 * the new agent token included.
 *
 * Why not `podman exec … k3s token rotate`: its `--new-token` has no
 * environment variable and no file form, so the server password would be in
 * the argv of a process (K32); the agent never puts a key in argv. So the
 * agent sends that same request itself: from a child process (`nsenter
 * --net` into the k3s server's network namespace, then this Node binary)
 * that gets the password on stdin, connects to the server's loopback on the
 * supervisor port, checks the server against `server/tls/server-ca.crt`
 * after checking that file against the hash in `server/token` (what k3s's
 * own CLI checks), and authenticates as user `server`.
 *
 * The re-sync is owed from the moment the server is given the new agent
 * token until the request succeeded: a marker file in the node dir (no key
 * in it) keeps that across agent restarts.
 */
import { spawn } from 'child_process';
import { createHash, timingSafeEqual } from 'crypto';
import { promises as fs } from 'fs';
import path from 'path';
import type { HeptoConfig } from '../../shared/config/types';
import { writeFileAtomic } from '../../shared/atomic-write';
import { errnoCode } from '../../shared/errors';
import { serverCaPath, serverTokenPath, tokenPassword } from './k3s-token';
import { K3S_API_PORT, nodeDir } from './specs';

/** The supervisor endpoint `k3s token rotate` calls (K31). */
export const TOKEN_ROTATE_PATH = '/v1-k3s/token';

/** Where the agent notes that the master's datastore is owed a re-sync. */
export function resyncMarkerPath(config: HeptoConfig, node: string): string {
  return path.join(nodeDir(config, node), 'k3s-agent-token-resync.json');
}

export async function resyncPending(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
    throw e;
  }
}

export async function markResyncPending(file: string, now: number): Promise<void> {
  if (await resyncPending(file)) return;
  const text = JSON.stringify({
    since: new Date(now).toISOString(),
    why: 'the k3s server was given a new agent token; its datastore is re-synced once it runs with it (docs/upstream.md K28, K31-K34)',
  });
  await writeFileAtomic(file, `${text}\n`, { mode: 0o600 });
}

export async function clearResync(file: string): Promise<void> {
  await fs.rm(file, { force: true });
}

/** The loopback the server's supervisor answers on, in the family of its service range (as its kubeconfig, K21). */
export function supervisorLoopback(serviceCidr: string): string {
  return serviceCidr.includes(':') ? '::1' : '127.0.0.1';
}

export interface TokenRotateRequest {
  /** The server's password: both the credential (user `server`) and the new token (unchanged). */
  password: string;
  /** PEM of server-ca.crt, to check the server with. */
  ca: string;
}

/**
 * What to send, from server/token (`K10<ca hash>::server:<password>`) and
 * server-ca.crt; or why not. The CA file must match the hash the token
 * pins, as k3s's CLI checks (K26); a bare token pins nothing.
 */
export function planTokenRotate(serverTokenText: string, caPem: Buffer): TokenRotateRequest | { error: string } {
  const text = serverTokenText.trim();
  const password = tokenPassword(text);
  if (password === '') return { error: 'server/token holds no password' };
  if (caPem.length === 0) return { error: 'server/tls/server-ca.crt is empty' };
  if (text.startsWith('K10') && text.includes('::')) {
    const pinned = text.slice(3, text.indexOf('::'));
    const actual = createHash('sha256').update(caPem).digest('hex');
    if (pinned !== '' && (pinned.length !== actual.length || !timingSafeEqual(Buffer.from(pinned), Buffer.from(actual)))) {
      return { error: 'the CA hash in server/token does not match server/tls/server-ca.crt' };
    }
  }
  return { password, ca: caPem.toString('utf8') };
}

/** Reads server/token and the CA under the master's k3s data dir and plans the request. */
export async function readTokenRotate(dataDir: string): Promise<TokenRotateRequest | { error: string }> {
  let token: string;
  let ca: Buffer;
  try {
    token = await fs.readFile(serverTokenPath(dataDir), 'utf8');
    ca = await fs.readFile(serverCaPath(dataDir));
  } catch (e) {
    return { error: `cannot read the server's token or CA under ${dataDir} (${errnoCode(e) ?? 'I/O error'})` };
  }
  return planTokenRotate(token, ca);
}

/**
 * The child's program (in argv: no secret in it). Reads one JSON line on
 * stdin, sends the PUT, prints `{"status":N,"body":"…"}` or `{"error":"…"}`.
 */
const CLIENT = `
const https = require('https');
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const q = JSON.parse(input);
  const done = (o) => { process.stdout.write(JSON.stringify(o)); process.exit(0); };
  const req = https.request({ host: q.host, port: q.port, method: 'PUT', path: q.path, ca: q.ca, auth: 'server:' + q.password,
      headers: { 'content-type': 'application/json' }, timeout: q.timeoutMs }, (res) => {
    let body = '';
    res.on('data', (d) => { if (body.length < 2000) body += d; });
    res.on('end', () => done({ status: res.statusCode, body: body.slice(0, 2000) }));
  });
  req.on('timeout', () => req.destroy(new Error('timed out after ' + q.timeoutMs + ' ms')));
  req.on('error', (e) => done({ error: e.message }));
  req.end(JSON.stringify({ newToken: q.password }));
});
`;

export interface TokenRotateResult {
  status: number | null;
  /** The server's answer or the connection error (never holds the password: the server does not echo it). */
  detail: string;
}

/**
 * Sends `PUT /v1-k3s/token` (new token = the current password) to the k3s
 * server whose main process is `pid`, from inside its network namespace.
 */
export function putTokenRotate(pid: number, req: TokenRotateRequest, opts: { host: string; port?: number; timeoutMs: number }): Promise<TokenRotateResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--target=${pid}`, '--net', '--', process.execPath, '-e', CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs + 5_000);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run nsenter (${e.message}): the agent needs nsenter (util-linux) and root`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(out) as { status?: number; body?: string; error?: string };
        if (r.error !== undefined) resolve({ status: null, detail: r.error });
        else resolve({ status: r.status ?? null, detail: (r.body ?? '').trim() });
      } catch {
        resolve({
          status: null,
          detail: `the request helper exited with code ${code ?? 'unknown'}${err.trim() ? `: ${err.trim().split('\n').slice(-1)[0]}` : ''}`,
        });
      }
    });
    const q = { host: opts.host, port: opts.port ?? K3S_API_PORT, path: TOKEN_ROTATE_PATH, ca: req.ca, password: req.password, timeoutMs: opts.timeoutMs };
    child.stdin.end(JSON.stringify(q));
  });
}
