/**
 * The cluster's admin key: one ed25519 key pair, made once by
 * `hepto-agent admin init` and kept by the cluster's owner. Its public half,
 * in the text form of shared/public-key.ts, is the `admin_pub` config field
 * on every machine. It signs admissions (admission.ts); issue 13 plans it
 * to sign invitations, removals and key rotations too (adminSign below).
 * Nothing else needs it, and it need not stay online. See docs/trust.md.
 *
 * The file (default /etc/hepto/admin.key, mode 0600, directory 0700) is JSON,
 * in the layout of a node's identity.json plus a `kind`, so that neither can
 * be loaded as the other:
 *
 *     { "version": 1, "kind": "hepto-admin-key",
 *       "public": "ed25519:<base64 of the 32-byte public key>",
 *       "private": "<base64 of the 64-byte secret key: seed ‖ public key>",
 *       "created_at": <ms since the epoch> }
 *
 * No error or warning ever contains the file's content.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { ed25519KeyPair, ed25519Sign, ed25519Verify } from '../net/curve';
import { parseKeyPairFile } from '../net/key-pair-file';
import { writeFileAtomic } from '../../shared/atomic-write';
import { canonicalJson } from '../../shared/canonical-json';
import { HeptoError, errnoCode, isHeptoError } from '../../shared/errors';
import { formatPublicKey, parsePublicKey } from '../../shared/public-key';

export const DEFAULT_ADMIN_KEY_FILE = '/etc/hepto/admin.key';
export const ADMIN_KEY_KIND = 'hepto-admin-key';

export interface AdminKey {
  publicKey: Uint8Array;
  /** 64-byte ed25519 secret key (seed ‖ public key); never printed or logged. */
  secretKey: Uint8Array;
  /** The public half in admin_pub's text form: `ed25519:<base64>`. */
  pub: string;
  /** When the key was made, ms since the epoch. */
  createdAt: number;
}

interface AdminKeyFileV1 {
  version: 1;
  kind: typeof ADMIN_KEY_KIND;
  public: string;
  private: string;
  created_at: number;
}

/** A fresh admin key pair (not written anywhere). */
export function generateAdminKey(now: number): AdminKey {
  const kp = ed25519KeyPair();
  return { publicKey: kp.publicKey, secretKey: kp.secretKey, pub: formatPublicKey(kp.publicKey), createdAt: now };
}

export function serializeAdminKey(key: AdminKey): string {
  const body: AdminKeyFileV1 = {
    version: 1,
    kind: ADMIN_KEY_KIND,
    public: key.pub,
    private: Buffer.from(key.secretKey).toString('base64'),
    created_at: key.createdAt,
  };
  return JSON.stringify(body, null, 2) + '\n';
}

function corrupt(file: string, why: string): HeptoError {
  return new HeptoError('ADMIN_KEY', `admin key ${file} is damaged: ${why}`, {
    hint: 'restore it from your backup; if it is lost for good, make a new one with "hepto-agent admin init" and put its public half in every machine\'s config as admin_pub',
  });
}

/** Parses and checks an admin key file's text; errors name `file`, never its content. */
export function parseAdminKey(file: string, text: string): AdminKey {
  const { publicKey, secretKey, createdAt } = parseKeyPairFile(text, {
    corrupt: (why) => corrupt(file, why),
    first: (o) => {
      if (o.kind === ADMIN_KEY_KIND) return;
      const identity = o.kind === undefined && 'public' in o && 'private' in o;
      throw new HeptoError('ADMIN_KEY', `${file} is not a hepto admin key${identity ? ' (it looks like a node identity file)' : ''}`, {
        hint: `pass --admin-key with the file that "hepto-agent admin init" wrote; the default is ${DEFAULT_ADMIN_KEY_FILE}`,
      });
    },
    publicKey: (v) => {
      const pub = typeof v === 'string' ? parsePublicKey(v) : null;
      if (!pub || !pub.ok) throw corrupt(file, `field "public" ${pub && !pub.ok ? pub.why : 'is missing'}`);
      return pub.key;
    },
  });
  return { publicKey, secretKey, pub: formatPublicKey(publicKey), createdAt };
}

const PUB_HINT = (file: string): string => `see its public half with "hepto-agent admin pub${file === DEFAULT_ADMIN_KEY_FILE ? '' : ` --admin-key ${file}`}"`;

/** The refusal when `file` is already there, whatever it is. */
function exists(file: string): HeptoError {
  return new HeptoError('ADMIN_KEY', `an admin key already exists at ${file}; not overwritten`, { hint: PUB_HINT(file) });
}

/**
 * Makes a new admin key and writes it to `file` (0600; a missing directory is
 * created 0700), never over an existing file. The bytes go through
 * writeFileAtomic to a staging name, fsynced, and are then hard-linked to
 * `file`: link(2) fails if `file` exists, so two `admin init` racing cannot
 * both win, and a crash leaves either no key or a whole one.
 */
export async function createAdminKey(file: string, now: number): Promise<AdminKey> {
  try {
    await fs.lstat(file);
    throw exists(file);
  } catch (e) {
    if (isHeptoError(e)) throw e;
    const code = errnoCode(e);
    if (code !== 'ENOENT') {
      const why =
        code === 'ENOTDIR' ? 'a part of its directory path is a file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? 'I/O error');
      throw new HeptoError('ADMIN_KEY', `cannot create the admin key ${file}: ${why}`, {
        hint: 'run as root, or pass --admin-key with a path in a directory you can write',
      });
    }
  }
  const key = generateAdminKey(now);
  const dir = path.dirname(file);
  const staging = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.new`);
  try {
    await writeFileAtomic(staging, serializeAdminKey(key), { mode: 0o600 });
  } catch (e) {
    if (isHeptoError(e)) throw new HeptoError(e.code, e.message.split(staging).join(file), { hint: e.hint });
    throw e;
  }
  try {
    await fs.link(staging, file);
  } catch (e) {
    await fs.unlink(staging).catch(() => undefined);
    if (errnoCode(e) === 'EEXIST') throw exists(file);
    throw new HeptoError('STATE_UNWRITABLE', `cannot write ${file}: ${errnoCode(e) ?? 'I/O error'}`, {
      hint: 'the directory must be writable by root and on a filesystem with hard links (not vfat)',
    });
  }
  await fs.unlink(staging).catch(() => undefined);
  const d = await fs.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return key;
}

export interface LoadedAdminKey {
  key: AdminKey;
  /** For example a mode looser than 0600; never the key. */
  warnings: string[];
}

/** Reads and checks an existing admin key. */
export async function loadAdminKey(file: string): Promise<LoadedAdminKey> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') {
      throw new HeptoError('ADMIN_KEY', `no admin key at ${file}`, {
        hint: `make one with "hepto-agent admin init${file === DEFAULT_ADMIN_KEY_FILE ? '' : ` --admin-key ${file}`}" on the machine that keeps it, or pass --admin-key with its path`,
      });
    }
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'I/O error');
    throw new HeptoError('ADMIN_KEY', `cannot read the admin key ${file} (${why})`, {
      hint: 'run as root, since the key is mode 0600, or pass --admin-key with its path',
    });
  }
  const key = parseAdminKey(file, text);
  const warnings: string[] = [];
  try {
    const mode = (await fs.stat(file)).mode & 0o7777;
    if ((mode & 0o077) !== 0) warnings.push(`admin key ${file} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`);
  } catch {
    // Just read: a failing stat changes nothing.
  }
  return { key, warnings };
}

/**
 * What an admin signature covers: a fixed context, the purpose and the
 * canonical JSON of the body, so a signature made for one purpose (say an
 * invitation) can never pass for another (say a removal). For the
 * invitations, admissions, removals and rotations of issue 13.
 */
export type AdminPurpose = 'invitation' | 'admission' | 'removal' | 'rotation';
const CONTEXT = 'hepto-admin-v1';

function signedBytes(purpose: AdminPurpose, body: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(`${CONTEXT}\0${purpose}\0${canonicalJson(body)}`, 'utf8'));
}

/** base64 ed25519 signature by the admin key over (purpose, body). */
export function adminSign(key: AdminKey, purpose: AdminPurpose, body: unknown): string {
  return Buffer.from(ed25519Sign(signedBytes(purpose, body), key.secretKey)).toString('base64');
}

/** True only if `sig` is the admin_pub key's signature over (purpose, body); never throws. */
export function adminVerify(adminPub: string, purpose: AdminPurpose, body: unknown, sig: string): boolean {
  const pub = parsePublicKey(adminPub);
  if (!pub.ok || !/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) return false;
  try {
    return ed25519Verify(signedBytes(purpose, body), new Uint8Array(Buffer.from(sig, 'base64')), pub.key);
  } catch {
    return false;
  }
}
