import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { inventoryToConfig, parseInventory, parseList } from '../../../shared/config/inventory';
import { validateConfig } from '../../../shared/config/validate';
import { defaults } from '../../../shared/config/defaults';
import { DEFAULT_WESHER_IMAGE } from '../../../shared/config/images';
import { HeptoError } from '../../../shared/errors';
import { FIXTURES } from './helpers';

const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

function invalid(text: string): HeptoError {
  try {
    parseInventory(text);
  } catch (e) {
    assert.ok(e instanceof HeptoError);
    assert.equal(e.code, 'INVENTORY_INVALID');
    return e;
  }
  assert.fail('expected INVENTORY_INVALID');
}

describe('config/inventory', () => {
  it("parses seed 002's exact example, trailing comments removed", () => {
    const inv = parseInventory(fixture('seed-002-inventory.ini'));
    assert.equal(inv.hosts.length, 1);
    assert.deepEqual(inv.hosts[0], {
      name: 'nodename',
      line: 2,
      vars: { ansible_host: '1.2.3.4', iface: 'ens1', ip: '2001:1234::1/64,192.168.123.123/24', gw: '2001:1234::ffff,192.168.123.254' },
    });
    assert.deepEqual(inv.vars, {
      ansible_user: 'root',
      storage_base: '/srv',
      anchors: '["2001:2345::1","..."]',
      master: 'nodename',
      mtu: '1400',
      overlay_key: 'SECRETKEY',
      cluster_key: 'SECRETKEY',
    });
    const config = inventoryToConfig(inv, 'nodename');
    assert.deepEqual(config, {
      node: 'nodename',
      storage_base: '/srv',
      anchors: ['2001:2345::1', '...'],
      master: 'nodename',
      mtu: 1400,
      overlay_key: 'SECRETKEY',
      cluster_key: 'SECRETKEY',
      iface: 'ens1',
      ip: ['2001:1234::1/64', '192.168.123.123/24'],
      gw: ['2001:1234::ffff', '192.168.123.254'],
    });
    // The seed's placeholders are exactly what validation must refuse.
    const { problems } = validateConfig(config);
    for (const f of ['anchors[1]', 'overlay_key', 'cluster_key'])
      assert.ok(
        problems.some((p) => p.startsWith(`${f}: `)),
        f,
      );
    assert.ok(!problems.join('\n').includes('SECRETKEY'));
  });

  it('turns a real inventory into valid configs for each node (round trip through validateConfig)', () => {
    const inv = parseInventory(fixture('cluster.ini'));
    assert.deepEqual(
      inv.hosts.map((h) => h.name),
      ['mercury', 'venus', 'mars'],
    );
    for (const name of ['mercury', 'venus', 'mars']) {
      const raw = inventoryToConfig(inv, name);
      assert.ok(!Object.keys(raw).some((k) => k.startsWith('ansible_')), name);
      const { config, problems } = validateConfig(JSON.parse(JSON.stringify(raw)));
      assert.deepEqual(problems, [], name);
      assert.equal(config?.node, name);
      assert.equal(config?.master, 'mercury');
      assert.deepEqual(config?.anchors, ['2001:db8:1::1', '[2001:db8:2::1]:7947']);
    }
    // Fields the seed's inventory predates take their defaults.
    const { config: venus } = validateConfig(inventoryToConfig(inv, 'venus'));
    assert.equal(venus?.cluster_cidr, '172.28.0.0/16');
    assert.equal(venus?.service_cidr, '172.29.0.0/16');
    assert.equal(venus?.wesher_download, defaults.wesher_download);
    assert.equal(venus?.wesher_sha256, null);
    assert.equal(venus?.images.wesher, DEFAULT_WESHER_IMAGE);
    const mars = inventoryToConfig(inv, 'mars');
    assert.equal(mars.network_mode, 'macvlan');
    assert.deepEqual(inventoryToConfig(inv, 'venus').gw, ['2001:db8:2::ffff']);
  });

  it('lets a node line override a group variable, and keeps quoted values whole', () => {
    const inv = parseInventory('[cluster]\na mtu=1300 iface="ens 1"\n[cluster:vars]\nmtu = 1400\nmaster="a" ; comment\n');
    const c = inventoryToConfig(inv, 'a');
    assert.equal(c.mtu, 1300);
    assert.equal(c.iface, 'ens 1');
    assert.equal(c.master, 'a');
  });

  it('keeps # inside a key that has no space before it', () => {
    const inv = parseInventory('[cluster]\na\n[cluster:vars]\noverlay_key=abc#def;ghi # comment\n');
    assert.equal(inv.vars.overlay_key, 'abc#def;ghi');
  });

  it('an unknown node: error listing the nodes the inventory has', () => {
    const inv = parseInventory(fixture('cluster.ini'));
    assert.throws(
      () => inventoryToConfig(inv, 'pluto'),
      (e: unknown) => e instanceof HeptoError && e.code === 'INVENTORY_INVALID' && /"pluto"/.test(e.message) && /mercury, venus, mars/.test(e.describe()),
    );
  });

  it('errors name the line number, every one of them', () => {
    const e = invalid('orphan\n[cluster]\na x\n[weird]\n[cluster:vars]\nnot a pair\nmtu=1\nmtu=2\n[cluster]\na\n');
    const text = e.details.join('\n');
    assert.match(text, /^line 1: outside any section/m);
    assert.match(text, /^line 3: expected name=value/m);
    assert.match(text, /^line 4: unknown section \[weird\]/m);
    assert.match(text, /^line 6: expected name=value/m);
    assert.match(text, /^line 8: mtu is already set on line 7/m);
    assert.match(text, /^line 10: node "a" is already listed on line 3/m);
    // The hint says what the format is, in the user's words (the seeds are our sources, not their vocabulary).
    assert.match(e.hint ?? '', /hepto Ansible inventory has one line per node under \[cluster\]/);
    assert.doesNotMatch(e.describe(), /seed/i);
  });

  it('parseList: JSON-ish lists, comma strings, and bad lists', () => {
    assert.deepEqual(parseList('["a", \'b\']', 'x'), ['a', 'b']);
    assert.deepEqual(parseList('[]', 'x'), []);
    assert.deepEqual(parseList('a, b', 'x'), ['a', 'b']);
    assert.throws(() => parseList('["a"', 'line 3: anchors'), /line 3: anchors/);
    assert.throws(() => parseList('[a]', 'line 3: anchors'), /quoted/);
  });
});
