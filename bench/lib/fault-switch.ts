/**
 * A switch between one member's GossipNode and its real transport, for the
 * "silent failure" measurement: once blackholed, the member neither hears nor
 * says anything, yet its TCP connections and listener stay open, as when a
 * machine hangs or its uplink drops packets without a reset. Nothing is
 * faked while the switch is off: calls go straight to the real transport.
 */
import type { Destination, PeerInfo, Transport, TransportEvents } from '../../agent/net/transport';

export class FaultSwitch {
  blackholed = false;
  /** When set, payloads sent are tallied per gossip message type (the JSON's "t" field). */
  tally: Map<string, { count: number; bytes: number }> | null = null;

  blackhole(): void {
    this.blackholed = true;
  }

  wrapEvents(events: TransportEvents): TransportEvents {
    // Every other event (vet, admissions, refusals) passes as it is.
    return {
      ...events,
      message: (from, payload) => {
        if (!this.blackholed) events.message(from, payload);
      },
      disconnected: (peer, trimmed) => {
        if (!this.blackholed) events.disconnected(peer, trimmed);
      },
    };
  }

  wrapTransport(inner: Transport): Transport {
    return {
      send: (to: Destination, payload: Uint8Array): Promise<PeerInfo> => {
        // A black hole swallows the frame: the sender learns nothing, just like a lost packet.
        if (this.blackholed) return new Promise<PeerInfo>(() => undefined);
        if (this.tally) {
          // Messages are compact JSON that start with {"t":"X" (agent/gossip/messages.ts).
          const type = payload.length > 6 ? String.fromCharCode(payload[6]) : '?';
          const t = this.tally.get(type) ?? { count: 0, bytes: 0 };
          t.count += 1;
          t.bytes += payload.length;
          this.tally.set(type, t);
        }
        return inner.send(to, payload);
      },
      start: () => inner.start(),
      stop: () => inner.stop(),
      disconnect: (name: string, trimmed?: boolean) => {
        if (!this.blackholed) inner.disconnect(name, trimmed);
      },
      stats: () => inner.stats(),
    };
  }
}
