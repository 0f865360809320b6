/**
 * A node's persistent ed25519 identity. It signs the handshake transcript (and
 * the member records), so other members can tell this node from anyone else
 * who merely knows the overlay key. Created once, then reused forever: losing
 * or replacing it changes who the node is, so a damaged file is an error, not
 * something to paper over.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { ed25519KeyPair } from './curve';
import { base64Field, parseKeyPairFile } from './key-pair-file';
import { makeDir, sweepTempFiles, writeFileAtomic } from '../../shared/atomic-write';
import { HeptoError, errnoCode } from '../../shared/errors';
import { sha256 } from './crypto';

export const IDENTITY_FILE = 'identity.json';

export interface Identity {
  publicKey: Uint8Array;
  /** 64-byte ed25519 secret key (seed + public key), never logged. */
  secretKey: Uint8Array;
  /** base64 of publicKey: how the identity appears in records and PeerInfo. */
  idPub: string;
  /** When the identity was created, ms since the epoch. */
  createdAt: number;
}

interface IdentityFileV1 {
  version: 1;
  public: string;
  private: string;
  created_at: number;
}

/** A fresh identity (not persisted). */
export function generateIdentity(now: number): Identity {
  const kp = ed25519KeyPair();
  return { publicKey: kp.publicKey, secretKey: kp.secretKey, idPub: b64(kp.publicKey), createdAt: now };
}

const fingerprints = new Map<string, string>();

/**
 * Short, log-safe name of an identity public key: first 12 hex chars of its
 * SHA-256. Remembered (bounded): status takes two per member, and a hash each
 * was a third of its time with a thousand members.
 */
export function fingerprint(idPub: string): string {
  let fp = fingerprints.get(idPub);
  if (fp === undefined) {
    if (fingerprints.size >= 8192) fingerprints.clear();
    fp = Buffer.from(sha256(Buffer.from(idPub, 'utf8')))
      .toString('hex')
      .slice(0, 12);
    fingerprints.set(idPub, fp);
  }
  return fp;
}

function b64(a: Uint8Array): string {
  return Buffer.from(a).toString('base64');
}

function corrupt(file: string, why: string): HeptoError {
  return new HeptoError('CONFIG_UNREADABLE', `identity file ${file} is corrupt: ${why}`, {
    hint:
      'restore it from a backup; only if it is lost for good, delete it and restart: ' +
      'the node then gets a new identity and the old one must leave the cluster first',
  });
}

/** Parses and checks an identity file's text; throws a HeptoError naming `file`. */
export function parseIdentity(file: string, text: string): Identity {
  const rules = { corrupt: (why: string) => corrupt(file, why), publicKey: (v: unknown) => base64Field(rules, 'public', v, 32) };
  const { publicKey, secretKey, createdAt } = parseKeyPairFile(text, rules);
  return { publicKey, secretKey, idPub: b64(publicKey), createdAt };
}

export function serializeIdentity(id: Identity): string {
  const body: IdentityFileV1 = { version: 1, public: b64(id.publicKey), private: b64(id.secretKey), created_at: id.createdAt };
  return JSON.stringify(body, null, 2) + '\n';
}

/**
 * Loads `<dir>/identity.json`, or creates it (mode 0600, dir 0700) when it
 * does not exist. A file that exists but cannot be read or parsed is an error.
 * First removes the temp files a write killed midway left in `dir`: those of
 * identity.json each hold a copy of the private key.
 */
export async function loadOrCreateIdentity(dir: string, now: number): Promise<Identity> {
  const file = path.join(dir, IDENTITY_FILE);
  // Best effort: a file that cannot be removed (read-only filesystem) must not stop a node whose identity loads.
  await sweepTempFiles(dir);
  let text: string | undefined;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') {
      throw new HeptoError('CONFIG_UNREADABLE', `cannot read identity file ${file}: ${errnoCode(e) ?? String(e)}`, {
        hint: 'the agent must run as root, or as the owner of that file',
      });
    }
  }
  if (text !== undefined) {
    const id = parseIdentity(file, text);
    // Restored from a backup with a looser mode? The secret key is for root's eyes only.
    const st = await fs.stat(file);
    if ((st.mode & 0o077) !== 0) await fs.chmod(file, 0o600).catch(() => undefined);
    return id;
  }
  try {
    await makeDir(dir, 0o700);
  } catch (e) {
    throw unwritable(file, `cannot create its directory ${dir}`, e);
  }
  const id = generateIdentity(now);
  try {
    await writeFileAtomic(file, serializeIdentity(id), { mode: 0o600 });
  } catch (e) {
    const code = errnoCode((e as { cause?: unknown }).cause);
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') throw unwritable(file, undefined, (e as { cause?: unknown }).cause);
    throw e;
  }
  return id;
}

/** A first start that cannot create the identity: say why (read-only, permission) and what to do. */
function unwritable(file: string, what: string | undefined, e: unknown): HeptoError {
  const code = errnoCode(e);
  const why =
    code === 'EROFS'
      ? 'the filesystem is read-only (EROFS)'
      : code === 'EACCES' || code === 'EPERM'
        ? `permission denied (${code})`
        : code === 'ENOTDIR'
          ? 'a part of its path is a file, not a directory (ENOTDIR)'
          : (code ?? 'I/O error');
  const hint =
    code === 'EROFS'
      ? 'this is the first start of this node, and its identity must be stored: remount that filesystem read-write, or set storage_base to a writable directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'this is the first start of this node, and its identity must be stored: run the agent as root, and make sure storage_base is writable by it (not a root-squashed network share)'
        : 'check storage_base: it must be a directory writable by the agent (root)';
  return new HeptoError('STATE_UNWRITABLE', `cannot create identity file ${file}: ${what ? `${what}: ` : ''}${why}`, { hint, cause: e });
}
