import { generateIdentity } from '../../../agent/net/identity';
import { WsTransport } from '../../../agent/net/ws-transport';
import { memoryLogger } from '../../helpers/memory-logger';
import { ContractHarness, Recorder, transportContract } from '../../helpers/transport-contract';
import { deadLoopbackAddress, TEST_OVERLAY_KEY } from './fixtures';

transportContract('WsTransport', async (): Promise<ContractHarness> => {
  const made: WsTransport[] = [];
  const dead = await deadLoopbackAddress();
  return {
    async node(name) {
      const rec = new Recorder();
      const identity = generateIdentity(Date.now());
      const t = new WsTransport({
        overlayKey: TEST_OVERLAY_KEY,
        identity,
        name,
        listen: { hosts: ['127.0.0.1'], port: 0 },
        events: rec.events,
        logger: memoryLogger().logger,
        dialTimeoutMs: 2_000,
      });
      made.push(t);
      await t.start();
      const addresses = t.address().map((a) => `${a.host}:${a.port}`);
      return { name, idPub: identity.idPub, addresses, transport: t, rec };
    },
    deadAddress: () => dead,
    async cleanup() {
      for (const t of made) await t.stop();
    },
  };
});
