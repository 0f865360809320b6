import { promises as fs } from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../shared/atomic-write';
import { errnoCode, errorMessage } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import type { PersistedPeer } from '../gossip/membership';

/** What survives a restart: known peers (to rejoin when every anchor is down) and our last incarnation. */
export interface PeerState {
  version: 1;
  incarnation: number;
  peers: PersistedPeer[];
}

const EMPTY: PeerState = { version: 1, incarnation: 0, peers: [] };

export class PeerStore {
  readonly file: string;
  constructor(
    dir: string,
    private readonly logger: Logger,
  ) {
    this.file = path.join(dir, 'peers.json');
  }

  /** A missing or unreadable file is not fatal: the agent starts from its anchors and says so. */
  async load(): Promise<PeerState> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') this.logger.warn('cannot read known peers; starting from anchors only', { file: this.file, error: errorMessage(e) });
      return EMPTY;
    }
    try {
      const data = JSON.parse(text) as PeerState;
      if (data?.version !== 1 || !Array.isArray(data.peers) || typeof data.incarnation !== 'number') throw new Error('unexpected shape');
      const peers = data.peers.filter(
        (p) => p && typeof p.name === 'string' && typeof p.id_pub === 'string' && Array.isArray(p.addresses) && p.addresses.every((a) => typeof a === 'string'),
      );
      return { version: 1, incarnation: data.incarnation, peers };
    } catch (e) {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      await fs.rename(this.file, aside).catch(() => undefined);
      this.logger.warn('known peers file is corrupt; kept aside, starting from anchors only', { file: aside, error: errorMessage(e) });
      return EMPTY;
    }
  }

  async save(state: PeerState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 });
  }
}
