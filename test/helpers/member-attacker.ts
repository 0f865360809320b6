/**
 * A member holding the overlay key, played by the test process (issue 14):
 * a real WsTransport under its own fresh identity, speaking the protocol to
 * real agents.
 */
import { OVERLAY_KEY } from './agent-cluster';
import { generateIdentity, type Identity } from '../../agent/net/identity';
import { WsTransport } from '../../agent/net/ws-transport';
import { memoryLogger } from '../helpers/memory-logger';

/** `opts.identity`: the attacker's own (to sign its own record with), fresh by default; `opts.overlayKey`: AgentCluster's by default. */
export async function memberAttacker(
  name: string,
  host: string,
  onDisconnected: (peer: string) => void = () => undefined,
  opts: { identity?: Identity; overlayKey?: string } = {},
): Promise<WsTransport> {
  const { logger } = memoryLogger('debug');
  const t = new WsTransport({
    overlayKey: opts.overlayKey ?? OVERLAY_KEY,
    identity: opts.identity ?? generateIdentity(Date.now()),
    name,
    listen: { hosts: [host], port: 0 },
    bindAddress: host,
    logger,
    events: { message: () => undefined, disconnected: (p) => onDisconnected(p.name), rejected: () => undefined },
  });
  await t.start();
  return t;
}
