/**
 * This node's own admission (agent/admin/admission.ts), kept across restarts
 * in `<storage_base>/<node>/admission.json` so that the node shows it from its
 * first handshake on. It holds no secret (admin-signed, public), but is
 * written like the rest of the state: atomically, mode 0600.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../shared/atomic-write';
import { errnoCode, errorMessage } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import type { Admission } from '../admin/admission';

export const ADMISSION_FILE = 'admission.json';

interface AdmissionFileV1 extends Admission {
  version: 1;
}

export class AdmissionStore {
  readonly file: string;

  constructor(dir: string, private readonly logger: Logger) {
    this.file = path.join(dir, ADMISSION_FILE);
  }

  /** The stored admission when it is this node's (name and identity); otherwise undefined, with a warning saying why. */
  async load(node: string, idPub: string): Promise<Admission | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') this.logger.warn('cannot read this node\'s admission; it starts without one', { file: this.file, error: errorMessage(e) });
      return undefined;
    }
    try {
      const o = JSON.parse(text) as Partial<AdmissionFileV1>;
      if (o?.version !== 1 || typeof o.node !== 'string' || typeof o.id_pub !== 'string' || typeof o.sig !== 'string' || !Number.isSafeInteger(o.at)) {
        throw new Error('unexpected shape');
      }
      if (o.node !== node || o.id_pub !== idPub) {
        this.logger.warn('the stored admission is for another node name or identity; ignored', { file: this.file, admitted: o.node, node });
        return undefined;
      }
      return { node: o.node, id_pub: o.id_pub, at: o.at as number, sig: o.sig };
    } catch (e) {
      this.logger.warn('this node\'s admission file is damaged; ignored (an admin can admit the node again)', { file: this.file, error: errorMessage(e) });
      return undefined;
    }
  }

  async save(a: Admission): Promise<void> {
    const body: AdmissionFileV1 = { version: 1, node: a.node, id_pub: a.id_pub, at: a.at, sig: a.sig };
    await writeFileAtomic(this.file, JSON.stringify(body, null, 1) + '\n', { mode: 0o600 });
  }
}
