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
import { timingSafeEqual } from 'crypto';
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
      return { ok: false, problem: `cannot read ${file} (${code ?? 'I/O error'}) to check that cluster_key still opens the k3s datastore; check the file's permissions and the disk` };
    }
    text = null;
  }
  return checkServerToken(text, clusterKey, { dataDir, node });
}
