/**
 * A member holding the overlay key, played by the test process (issue 14):
 * a real WsTransport under its own fresh identity, speaking the protocol to
 * real agents.
 */
import { OVERLAY_KEY } from './agent-cluster';
import { generateIdentity } from '../../agent/net/identity';
import { WsTransport } from '../../agent/net/ws-transport';
import { memoryLogger } from '../../shared/log';

export async function memberAttacker(name: string, host: string, onDisconnected: (peer: string) => void = () => undefined): Promise<WsTransport> {
  const { logger } = memoryLogger('debug');
  const t = new WsTransport({
    overlayKey: OVERLAY_KEY,
    identity: generateIdentity(Date.now()),
    name,
    listen: { hosts: [host], port: 0 },
    bindAddress: host,
    logger,
    events: { message: () => undefined, disconnected: (p) => onDisconnected(p.name), rejected: () => undefined },
  });
  await t.start();
  return t;
}
