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

  blackhole(): void {
    this.blackholed = true;
  }

  wrapEvents(events: TransportEvents): TransportEvents {
    return {
      message: (from, payload) => {
        if (!this.blackholed) events.message(from, payload);
      },
      disconnected: (peer) => {
        if (!this.blackholed) events.disconnected(peer);
      },
      rejected: (info) => events.rejected(info),
    };
  }

  wrapTransport(inner: Transport): Transport {
    return {
      send: (to: Destination, payload: Uint8Array): Promise<PeerInfo> =>
        // A black hole swallows the frame: the sender learns nothing, just like a lost packet.
        this.blackholed ? new Promise<PeerInfo>(() => undefined) : inner.send(to, payload),
      start: () => inner.start(),
      stop: () => inner.stop(),
      disconnect: (name: string) => {
        if (!this.blackholed) inner.disconnect(name);
      },
      stats: () => inner.stats(),
    };
  }
}
