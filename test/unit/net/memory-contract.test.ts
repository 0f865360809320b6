import { MemoryNetwork } from '../../helpers/memory-transport';
import { ContractHarness, Recorder, transportContract } from '../../helpers/transport-contract';

transportContract('MemoryTransport', async (): Promise<ContractHarness> => {
  const net = new MemoryNetwork();
  const made: { stop(): Promise<void> }[] = [];
  return {
    async node(name) {
      const rec = new Recorder();
      const t = net.transport({ name, events: rec.events });
      await t.start();
      made.push(t);
      return { name, idPub: t.idPub, addresses: t.addresses, transport: t, rec };
    },
    deadAddress: () => 'nobody:7947',
    async cleanup() {
      for (const t of made) await t.stop();
    },
  };
});
