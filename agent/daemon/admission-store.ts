/**
 * What the admin signed that this node keeps across restarts
 * (agent/admin/admission.ts): its own admission, in
 * `<storage_base>/<node>/admission.json`, so that it shows it from its first
 * handshake on; and every removal it knows, in `removals.json`, so that a
 * removed member stays refused after a restart; and the boxes of the newest
 * key rotation, in `rotation.json`, so that it can still hand a member that
 * was off its box after a restart (sealed: only that member opens one).
 * Nothing here is secret
 * (admin-signed, public), but it is written like the rest of the state:
 * atomically, mode 0600.
 */
import * as path from 'path';
import { writeFileAtomic } from '../../shared/atomic-write';
import { loadStateFile } from './state-file';
import type { Logger } from '../../shared/log';
import type { Admission, Removal } from '../admin/admission';
import { admission } from '../gossip/validate';
import { rotationBoxFromJson, type RotationBox } from '../admin/rotation';

export const ADMISSION_FILE = 'admission.json';
export const REMOVALS_FILE = 'removals.json';
export const ROTATION_FILE = 'rotation.json';

interface AdmissionFileV1 extends Admission {
  version: 1;
}

export class AdmissionStore {
  readonly file: string;
  readonly removalsFile: string;
  readonly rotationFile: string;

  constructor(
    dir: string,
    private readonly logger: Logger,
  ) {
    this.file = path.join(dir, ADMISSION_FILE);
    this.removalsFile = path.join(dir, REMOVALS_FILE);
    this.rotationFile = path.join(dir, ROTATION_FILE);
  }

  /** The stored admission when it is this node's (name and identity); otherwise undefined, with a warning saying why. */
  async load(node: string, idPub: string): Promise<Admission | undefined> {
    const words = {
      unreadable: "cannot read this node's admission; it starts without one",
      damaged: "this node's admission file is damaged; ignored (an admin can admit the node again)",
      keepDamaged: true,
    };
    return loadStateFile(this.file, this.logger, words, (text) => {
      const o = JSON.parse(text) as Partial<AdmissionFileV1>;
      if (o?.version !== 1 || typeof o.node !== 'string' || typeof o.id_pub !== 'string' || typeof o.sig !== 'string' || !Number.isSafeInteger(o.at)) {
        throw new Error('unexpected shape');
      }
      if (o.node !== node || o.id_pub !== idPub) {
        this.logger.warn('the stored admission is for another node name or identity; ignored', { file: this.file, admitted: o.node, node });
        return undefined;
      }
      // The shape of the proof as the wire checks it (an admission by invitation carries more); the membership verifies it.
      const proof = admission({ at: o.at, sig: o.sig, ...(o.inv !== undefined ? { inv: o.inv } : {}) }, 'admission.json');
      return { node: o.node, id_pub: o.id_pub, ...proof };
    });
  }

  /** The removals kept; the membership checks their signatures. A damaged file is set aside, with a warning. */
  loadRemovals(): Promise<Removal[]> {
    return this.loadList(this.removalsFile, 'removals', 'the removals', (list) =>
      (list as Array<Partial<Removal> | null>).filter(
        (r): r is Removal => !!r && typeof r.node === 'string' && typeof r.id_pub === 'string' && typeof r.sig === 'string' && Number.isSafeInteger(r.at),
      ),
    );
  }

  async saveRemovals(removals: Removal[]): Promise<void> {
    const body = { version: 1, removals: removals.map((r) => ({ node: r.node, id_pub: r.id_pub, at: r.at, sig: r.sig })) };
    await writeFileAtomic(this.removalsFile, JSON.stringify(body, null, 1) + '\n', { mode: 0o600 });
  }

  /** The boxes of the newest rotation kept; the membership checks them. A damaged file is set aside, with a warning. */
  loadRotation(): Promise<RotationBox[]> {
    return this.loadList(this.rotationFile, 'boxes', 'the key rotation boxes', (list) => list.map((b) => rotationBoxFromJson(b)));
  }

  /**
   * `{version: 1, <field>: [...]}` from `file`: none when it does not exist or
   * cannot be read (said), and a damaged one (bad JSON, shape, or an item
   * `check` throws on) is set aside, said, and counts as none: the node
   * relearns what it held from its peers.
   */
  private async loadList<T>(file: string, field: string, what: string, check: (list: unknown[]) => T[]): Promise<T[]> {
    const words = {
      unreadable: `cannot read ${what} this node keeps; it relearns them from its peers`,
      damaged: `the file of ${what} is damaged; kept aside, relearning them from peers`,
    };
    const list = await loadStateFile(file, this.logger, words, (text) => {
      const o = JSON.parse(text) as Record<string, unknown>;
      const items = o?.[field];
      if (o?.version !== 1 || !Array.isArray(items)) throw new Error('unexpected shape');
      return check(items);
    });
    return list ?? [];
  }

  async saveRotation(boxes: RotationBox[]): Promise<void> {
    await writeFileAtomic(this.rotationFile, JSON.stringify({ version: 1, boxes }) + '\n', { mode: 0o600 });
  }

  async save(a: Admission): Promise<void> {
    const body: AdmissionFileV1 = { version: 1, node: a.node, id_pub: a.id_pub, at: a.at, sig: a.sig, ...(a.inv ? { inv: a.inv } : {}) };
    await writeFileAtomic(this.file, JSON.stringify(body, null, 1) + '\n', { mode: 0o600 });
  }
}
