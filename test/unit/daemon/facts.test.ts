/**
 * Host facts with only the parts of systeminformation they use (issue 16):
 * in a fresh Node process (the module cache is per process), gathering the
 * facts loads systeminformation's cpu, memory and osinfo modules (and the
 * util and network modules they require), not its index and the other
 * fifteen, and still gives the host's facts.
 */
import assert from 'node:assert/strict';
import { inFreshNode } from '../../helpers/fresh-node';
import * as os from 'os';

const LOADED = "Object.keys(require.cache).filter((k) => k.includes('/systeminformation/lib/')).map((k) => k.split('/').pop()).sort()";

describe('daemon/facts: systeminformation, the parts the facts use', () => {
  it('gathers the host facts with cpu, memory and osinfo (and the two modules they need) loaded, nothing else of systeminformation', () => {
    const r = inFreshNode(`
      require('./agent/daemon/facts').gatherFacts(10_000).then((facts) => console.log(JSON.stringify({ facts, loaded: ${LOADED} })));
    `);
    assert.deepEqual(r.loaded, ['cpu.js', 'memory.js', 'network.js', 'osinfo.js', 'util.js']);
    const facts = r.facts as { cores: number; memory_mb: number; os: string };
    assert.ok(facts.cores >= 1, `cores ${facts.cores}`);
    assert.equal(facts.memory_mb, Math.round(os.totalmem() / 1048576));
    assert.ok(facts.os.length > 0);
  });

  it('the package itself loads every module (the test can fail)', () => {
    const r = inFreshNode(`require('systeminformation'); console.log(JSON.stringify({ loaded: ${LOADED} }));`);
    assert.ok((r.loaded as string[]).includes('audio.js') && (r.loaded as string[]).length > 10, String(r.loaded));
  });
});
