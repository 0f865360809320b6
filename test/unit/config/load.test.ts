import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadConfig } from '../../../shared/config/load';
import { locateJsonError } from '../../../shared/config/json-position';
import { HeptoError } from '../../../shared/errors';
import { scrub } from '../../../shared/log';
import { baseConfig, CLUSTER_KEY, FIXTURES, OVERLAY_KEY } from './helpers';

describe('config/load', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hepto-config-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, text: string, mode = 0o600): Promise<string> {
    const p = path.join(dir, name);
    await fs.writeFile(p, text);
    await fs.chmod(p, mode);
    return p;
  }

  async function rejects(p: Promise<unknown>, code: string): Promise<HeptoError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof HeptoError, String(e));
      assert.equal(e.code, code, e.describe());
      for (const k of [OVERLAY_KEY, CLUSTER_KEY]) assert.ok(!e.describe().includes(k), 'key leaked');
      return e;
    }
    assert.fail('expected a rejection');
  }

  it('loads a valid file without warnings when it is mode 0600', async () => {
    const p = await write('hepto.json', JSON.stringify(baseConfig()));
    const { config, warnings } = await loadConfig(p, { hostname: 'x' });
    assert.equal(config.node, 'venus');
    assert.deepEqual(warnings, []);
  });

  it('loads the minimal fixture with defaults filled in', async () => {
    const text = await fs.readFile(path.join(FIXTURES, 'minimal.json'), 'utf8');
    const { config } = await loadConfig(await write('minimal.json', text), { hostname: 'x' });
    assert.equal(config.node, 'mercury');
    assert.equal(config.mtu, 1400);
    assert.deepEqual(config.anchors, []);
  });

  it('applies the pod and service range defaults of the configured overlay family at load', async () => {
    const p = await write('v6.json', JSON.stringify({ ...baseConfig(), overlay_net: 'fd00:1::/64' }));
    const { config } = await loadConfig(p, { hostname: 'x' });
    assert.equal(config.cluster_cidr, 'fd42:4865:7074:6f00::/56');
    assert.equal(config.service_cidr, 'fd42:4865:7074:7000::/112');
    const v4 = (await loadConfig(await write('v4.json', JSON.stringify(baseConfig())), { hostname: 'x' })).config;
    assert.deepEqual([v4.cluster_cidr, v4.service_cidr], ['172.28.0.0/16', '172.29.0.0/16']);
  });

  it('loads the full fixture', async () => {
    const text = await fs.readFile(path.join(FIXTURES, 'valid.json'), 'utf8');
    const { config } = await loadConfig(await write('valid.json', text), { hostname: 'x' });
    assert.deepEqual(config.ip, ['2001:db8:2::1/64', '192.0.2.12/24']);
    assert.equal(config.nodes[0].iface, 'ens1');
  });

  it('registers every key as a secret so logs scrub them', async () => {
    const overlay = 'LoadTestOverlayKey00000000000001';
    const cluster = 'LoadTestClusterKey00000000000002';
    const agent = 'LoadTestAgentKey0000000000000003';
    await loadConfig(await write('k.json', JSON.stringify({ ...baseConfig(), overlay_key: overlay, cluster_key: cluster, agent_key: agent })), {
      hostname: 'x',
    });
    assert.equal(scrub(`a ${overlay} b ${cluster} c ${agent}`), 'a [redacted] b [redacted] c [redacted]');
  });

  it('an invalid agent_key: CONFIG_INVALID naming agent_key, never its value', async () => {
    const bad = 'LoadTestAgentKeyTooShort';
    const e = await rejects(loadConfig(await write('a.json', JSON.stringify({ ...baseConfig(), agent_key: bad })), { hostname: 'x' }), 'CONFIG_INVALID');
    assert.match(e.describe(), /agent_key: must be exactly 32 characters, got 24/);
    assert.ok(!e.describe().includes(bad), 'the key leaked');
    assert.equal(scrub(`x ${bad}`), 'x [redacted]', 'registered even though invalid');
  });

  it('warns when group or others can read the file', async () => {
    const p = await write('open.json', JSON.stringify(baseConfig()), 0o644);
    const { warnings } = await loadConfig(p, { hostname: 'x' });
    assert.deepEqual(warnings, [`config ${p} is readable by other users (mode 0644); run chmod 600 ${p}`]);
  });

  it('a missing file: CONFIG_UNREADABLE naming the path and how to create it', async () => {
    const p = path.join(dir, 'nope.json');
    const e = await rejects(loadConfig(p), 'CONFIG_UNREADABLE');
    assert.ok(e.describe().includes(p));
    assert.ok(e.describe().includes('hepto-agent import-inventory'));
  });

  it('a directory: CONFIG_UNREADABLE', async () => {
    await rejects(loadConfig(dir), 'CONFIG_UNREADABLE');
  });

  it('invalid JSON: line and column, never the content', async () => {
    const text = `{\n  "overlay_key": "${OVERLAY_KEY}",\n  "cluster_key": "${CLUSTER_KEY}"\n  "master": "m"\n}`;
    const e = await rejects(loadConfig(await write('bad.json', text)), 'CONFIG_UNREADABLE');
    assert.match(e.message, /not valid JSON at line 4, column 3 \(expected , or \}\)/);
  });

  it('invalid content: CONFIG_INVALID with one detail line per problem', async () => {
    const p = await write('inv.json', JSON.stringify({ ...baseConfig(), mtu: 10, overlay_key: 'tooShortSecret1' }));
    const e = await rejects(loadConfig(p, { hostname: 'x' }), 'CONFIG_INVALID');
    assert.ok(e.message.includes(p) && e.message.includes('2 problems'));
    assert.equal(e.details.length, 2);
    assert.ok(e.details.some((d) => d.startsWith('mtu: ')));
    assert.ok(e.details.some((d) => d.startsWith('overlay_key: ')));
    assert.ok(!e.describe().includes('tooShortSecret1'));
  });

  it('accepts a UTF-8 byte-order mark', async () => {
    const p = await write('bom.json', '\uFEFF' + JSON.stringify(baseConfig()));
    assert.equal((await loadConfig(p, { hostname: 'x' })).config.master, 'mercury');
  });
});

describe('config/json-position', () => {
  it('returns null for valid JSON, whatever JSON.parse accepts', () => {
    for (const t of ['{}', '[]', ' {"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]} ', '"s"', '0']) {
      JSON.parse(t);
      assert.equal(locateJsonError(t), null, t);
    }
  });
  it('points at the first error', () => {
    assert.deepEqual(locateJsonError('{"a": 1,}'), { line: 1, column: 9, expected: 'no comma allowed before }' });
    assert.deepEqual(locateJsonError('{\n "a" 1}'), { line: 2, column: 6, expected: 'expected : after the field name' });
    assert.deepEqual(locateJsonError("{'a': 1}"), { line: 1, column: 2, expected: 'expected a field name in double quotes' });
    assert.equal(locateJsonError('{"a": [1, 2}')?.expected, 'expected , or ]');
    assert.equal(locateJsonError('{"a": "x')?.expected, 'expected " to close the string');
    assert.equal(locateJsonError('')?.expected, 'unexpected end of file');
    assert.equal(locateJsonError('{} x')?.expected, 'expected nothing after the end of the JSON value');
    assert.equal(locateJsonError('[01]')?.expected, 'expected , or ]');
  });
});
