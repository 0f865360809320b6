import * as path from 'path';
import { writeFileAtomic } from '../../shared/atomic-write';
import { loadStateFile } from './state-file';
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
    const words = {
      unreadable: 'cannot read known peers; starting from anchors only',
      damaged: 'known peers file is corrupt; kept aside, starting from anchors only',
    };
    const state = await loadStateFile(this.file, this.logger, words, (text): PeerState => {
      const data = JSON.parse(text) as PeerState;
      if (data?.version !== 1 || !Array.isArray(data.peers) || typeof data.incarnation !== 'number') throw new Error('unexpected shape');
      const peers = data.peers.filter(
        (p) => p && typeof p.name === 'string' && typeof p.id_pub === 'string' && Array.isArray(p.addresses) && p.addresses.every((a) => typeof a === 'string'),
      );
      return { version: 1, incarnation: data.incarnation, peers };
    });
    return state ?? EMPTY;
  }

  async save(state: PeerState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 });
  }
}
