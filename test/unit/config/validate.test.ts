import { strict as assert } from 'assert';
import { validateConfig } from '../../../shared/config/validate';
import { defaults, KUBE_CIDR_DEFAULTS, kubeCidrDefaults } from '../../../shared/config/defaults';
import { DEFAULT_IMAGES, DEFAULT_WESHER_IMAGE } from '../../../shared/config/images';
import { AGENT_KEY, baseConfig, CLUSTER_KEY, OVERLAY_KEY } from './helpers';

const SHORT_SECRET = 'ShortSecretXyz12';
const LONG_SECRET = 'LongSecretValue0123456789abcdefghijkl';

function problemsOf(patch: Record<string, unknown>, opts = { hostname: 'venus' }): string[] {
  const raw = { ...baseConfig(), ...patch };
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  const r = validateConfig(raw, opts);
  assert.equal(r.config, null, `expected rejection of ${JSON.stringify(patch)}`);
  assert.ok(r.problems.length > 0);
  for (const p of r.problems) {
    for (const secret of [OVERLAY_KEY, CLUSTER_KEY, AGENT_KEY, SHORT_SECRET, LONG_SECRET]) {
      assert.ok(!p.includes(secret), `a key leaked into: ${p}`);
    }
  }
  return r.problems;
}

/** Asserts one problem line names `field` first and mentions every `words`. */
function expectProblem(patch: Record<string, unknown>, field: string, ...words: string[]): string {
  const problems = problemsOf(patch);
  const line = problems.find((p) => p.startsWith(`${field}: `));
  assert.ok(line, `no problem names ${field}; got:\n${problems.join('\n')}`);
  for (const w of words) assert.ok(line.includes(w), `"${line}" does not mention "${w}"`);
  return line;
}

describe('config/validate: accepts and defaults', () => {
  it('applies every default to a minimal config', () => {
    const { config, problems } = validateConfig(baseConfig(), { hostname: 'venus' });
    assert.deepEqual(problems, []);
    assert.ok(config);
    assert.equal(config.mtu, 1400);
    assert.equal(config.network_mode, 'host');
    assert.equal(config.storage_base, '/srv');
    assert.equal(config.overlay_net, '10.0.0.0/8');
    assert.equal(config.gossip_port, 7947);
    assert.deepEqual(config.gossip_listen, ['::']);
    assert.deepEqual(config.anchors, []);
    assert.deepEqual(config.advertise, []);
    assert.equal(config.runtime, 'podman');
    assert.equal(config.control_socket, '/run/hepto/agent.sock');
    assert.equal(config.podman_socket, '/run/podman/podman.sock');
    assert.deepEqual(config.images, { ...DEFAULT_IMAGES });
    assert.equal(config.images.wesher, DEFAULT_WESHER_IMAGE);
    assert.equal(DEFAULT_WESHER_IMAGE, 'localhost/hepto/wesher:v0.2.6');
    assert.equal(config.cluster_cidr, '172.28.0.0/16');
    assert.equal(config.service_cidr, '172.29.0.0/16');
    assert.equal(config.wesher_download, 'https://github.com/costela/wesher/releases/download/v0.2.6');
    assert.equal(config.wesher_sha256, null);
    assert.deepEqual(config.ulimits, {});
    assert.deepEqual(config.nodes, []);
    assert.equal(config.log_level, 'info');
    assert.equal(config.admin_pub, null);
    assert.equal(config.iface, null);
    assert.deepEqual(config.ip, []);
    assert.deepEqual(config.gw, []);
  });

  it('defaults node to the short host name, lowercased', () => {
    const raw = baseConfig();
    delete raw.node;
    const { config } = validateConfig(raw, { hostname: 'Jupiter.example.org' });
    assert.equal(config?.node, 'jupiter');
  });

  it('does not share default objects between configs', () => {
    const a = validateConfig(baseConfig(), { hostname: 'x' }).config!;
    a.anchors.push('192.0.2.1');
    a.images.k3s = 'changed';
    const b = validateConfig(baseConfig(), { hostname: 'x' }).config!;
    assert.deepEqual(b.anchors, []);
    assert.equal(b.images.k3s, DEFAULT_IMAGES.k3s);
    assert.deepEqual(defaults.anchors, []);
  });

  it("normalises the seed's comma-separated ip and gw into lists", () => {
    const { config, problems } = validateConfig(
      { ...baseConfig(), ip: '2001:1234::1/64, 192.168.123.123/24', gw: '2001:1234::ffff,192.168.123.254' },
      { hostname: 'x' },
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(config?.ip, ['2001:1234::1/64', '192.168.123.123/24']);
    assert.deepEqual(config?.gw, ['2001:1234::ffff', '192.168.123.254']);
  });

  it('gives extra hosted nodes the machine interface, mode and gateways, and their own addresses', () => {
    const { config, problems } = validateConfig(
      {
        ...baseConfig(),
        iface: 'ens1',
        network_mode: 'ipvlan',
        ip: ['2001:db8::1/64'],
        gw: ['2001:db8::ffff'],
        nodes: [{ node: 'venus-2', ip: '2001:db8::2/64' }],
      },
      { hostname: 'x' },
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(config?.nodes, [{ node: 'venus-2', iface: 'ens1', ip: ['2001:db8::2/64'], gw: ['2001:db8::ffff'], network_mode: 'ipvlan' }]);
  });

  it('accepts every anchor form: host, host:port, IPv4, [v6]:port, bare v6', () => {
    const anchors = ['anchor', 'anchor.example.org:7000', '192.0.2.1', '192.0.2.1:80', '[2001:db8::1]:7947', '[2001:db8::1]', '2001:2345::1'];
    const { problems } = validateConfig({ ...baseConfig(), anchors }, { hostname: 'x' });
    assert.deepEqual(problems, []);
  });

  it('accepts the limits of the ranges (MTU 1280 and 9000, ports 1 and 65535, IPv6 overlay /64)', () => {
    for (const patch of [{ mtu: 1280 }, { mtu: 9000 }, { gossip_port: 1 }, { gossip_port: 65535 }, { overlay_net: 'fd00:1::/64' }]) {
      assert.deepEqual(validateConfig({ ...baseConfig(), ...patch }, { hostname: 'x' }).problems, [], JSON.stringify(patch));
    }
  });
});

describe('config/validate: rejects, naming the field', () => {
  it('refuses input that is not an object', () => {
    for (const raw of [null, [], 'x', 3, undefined]) {
      const r = validateConfig(raw);
      assert.equal(r.config, null);
      assert.match(r.problems[0], /^config: must be a JSON object/);
    }
  });

  it('unknown field, suggesting the closest known name', () => {
    expectProblem({ overlayKey: 'x' }, 'overlayKey', 'unknown field', '"overlay_key"');
    expectProblem({ mut: 1400 }, 'mut', 'unknown field', '"mtu"');
  });
  it('unknown field inside nodes[] and images', () => {
    expectProblem({ nodes: [{ node: 'b', adress: 'x' }] }, 'nodes[0].adress', 'unknown field');
    expectProblem({ images: { k3: 'x' } }, 'images.k3', 'unknown field', '"k3s"');
  });
  it('wrong types, without echoing the value', () => {
    expectProblem({ mtu: '1400' }, 'mtu', 'whole number', 'got a string');
    expectProblem({ mtu: 1400.5 }, 'mtu', 'whole number');
    expectProblem({ anchors: '2001:db8::1' }, 'anchors', 'must be a list');
    expectProblem({ anchors: [42] }, 'anchors[0]', 'must be a string');
    expectProblem({ ip: 5 }, 'ip', 'comma-separated');
    expectProblem({ iface: 5 }, 'iface', 'string or null');
  });
  it('every required field that is missing', () => {
    const problems = problemsOf({ master: undefined, overlay_key: undefined, cluster_key: undefined });
    for (const f of ['master', 'overlay_key'])
      assert.ok(
        problems.some((p) => p.startsWith(`${f}: required`)),
        f,
      );
    assert.ok(problems.find((p) => p.startsWith('overlay_key'))!.includes('hepto-agent keygen'));
    // Without a master name this machine is taken for a non-master: it needs one of the k3s keys.
    const k3s = problems.find((p) => p.startsWith('agent_key: required'))!;
    assert.ok(k3s && k3s.includes('cluster_key'), problems.join('\n'));
  });
  it('a short key, saying its length but not its value', () => {
    const line = expectProblem({ overlay_key: SHORT_SECRET }, 'overlay_key', 'exactly 32 characters', `got ${SHORT_SECRET.length}`, 'hepto-agent keygen');
    assert.ok(!line.includes(SHORT_SECRET));
  });
  it('a long key', () => {
    expectProblem({ cluster_key: LONG_SECRET }, 'cluster_key', 'exactly 32', `got ${LONG_SECRET.length}`);
  });
  it('a key with a space or a non-ASCII character', () => {
    expectProblem({ overlay_key: 'Ov3rlay KeyForTestsOnly012345678' }, 'overlay_key', 'printable ASCII');
    expectProblem({ cluster_key: 'C1usterKéyForTestsOnly0123456789' }, 'cluster_key', 'printable ASCII');
  });
  it('a key that is not a string', () => {
    expectProblem({ overlay_key: 12345 }, 'overlay_key', 'must be a string');
  });
  it('the same key for overlay and cluster', () => {
    expectProblem({ cluster_key: OVERLAY_KEY }, 'cluster_key', 'same as overlay_key', 'independently');
  });
  it('agent_key: the same form as the other keys, checked the same way, never echoed', () => {
    assert.equal(
      expectProblem({ agent_key: SHORT_SECRET }, 'agent_key', 'exactly 32 characters', `got ${SHORT_SECRET.length}`, 'hepto-agent keygen').includes(
        SHORT_SECRET,
      ),
      false,
    );
    expectProblem({ agent_key: LONG_SECRET }, 'agent_key', 'exactly 32');
    expectProblem({ agent_key: 'Ag3nt KeyForTestsOnly01234567890' }, 'agent_key', 'printable ASCII');
    expectProblem({ agent_key: 42 }, 'agent_key', 'a string or null', 'got a number');
    expectProblem({ agent_key: OVERLAY_KEY }, 'agent_key', 'same as overlay_key', 'independently');
    expectProblem({ agent_key: CLUSTER_KEY }, 'agent_key', 'same as cluster_key', 'hepto-agent keygen');
  });
  it('cluster_key is required on the machine that hosts the master, named in the line', () => {
    const line = expectProblem(
      { node: 'mercury', cluster_key: undefined, agent_key: AGENT_KEY },
      'cluster_key',
      'required',
      '"mercury"',
      'k3s server token',
      'hepto-agent keygen',
    );
    assert.ok(line.startsWith('cluster_key: required on the machine that hosts the master node'), line);
    // ... also when the master is one of its extra nodes, and when it is given as null.
    expectProblem(
      {
        cluster_key: null,
        nodes: [{ node: 'mercury', network_mode: 'macvlan', iface: 'ens1', ip: ['2001:db8::9/64'] }],
        network_mode: 'macvlan',
        iface: 'ens1',
        ip: ['2001:db8::8/64'],
      },
      'cluster_key',
      'required on the machine that hosts the master',
    );
    expectProblem({ node: 'mercury', cluster_key: null }, 'cluster_key', 'required');
  });
  it('a machine that does not host the master needs agent_key or cluster_key: one line naming both', () => {
    const line = expectProblem({ cluster_key: undefined }, 'agent_key', 'required', 'cluster_key', 'Kubernetes admin');
    assert.equal(problemsOf({ cluster_key: null, agent_key: null }).filter((p) => p.startsWith('agent_key: required')).length, 1, line);
  });
  it('an overlay_net that is not a CIDR', () => {
    expectProblem({ overlay_net: '10.0.0.0' }, 'overlay_net', 'not a CIDR');
    expectProblem({ overlay_net: '10.0.0.300/8' }, 'overlay_net', 'not a CIDR');
    expectProblem({ overlay_net: '10.0.0.0/33' }, 'overlay_net', 'not a CIDR');
  });
  it('an overlay_net prefix wesher cannot use', () => {
    expectProblem({ overlay_net: '10.0.0.0/12' }, 'overlay_net', 'multiple of 8');
    expectProblem({ overlay_net: '10.0.0.0/32' }, 'overlay_net', 'no room');
    expectProblem({ overlay_net: '::/0' }, 'overlay_net', 'no room');
  });
  it('node addresses without prefix or with a bad one', () => {
    expectProblem({ ip: ['192.0.2.1'] }, 'ip[0]', 'prefix length is missing');
    expectProblem({ ip: '2001:db8::1/64,2001:db8::zz/64' }, 'ip[1]', 'not an IP address');
    expectProblem({ ip: ['192.0.2.1/33'] }, 'ip[0]', 'from 0 to 32');
    expectProblem({ nodes: [{ node: 'b', ip: ['nope'] }] }, 'nodes[0].ip[0]', 'address with prefix');
  });
  it('bad gateways', () => {
    expectProblem({ gw: ['192.0.2.300'] }, 'gw[0]', 'not an IP address');
    expectProblem({ gw: ['192.0.2.254/24'] }, 'gw[0]', 'no prefix length');
    expectProblem({ ip: ['2001:db8::1/64'], gw: ['192.0.2.254'] }, 'gw[0]', 'no IPv4 address');
  });
  it('anchors that do not parse', () => {
    const cases: Array<[string, string]> = [
      ['2001:db8::1:7947:x', 'needs brackets'],
      ['host:port:extra', 'needs brackets'],
      ['[2001:db8::1]:99999', 'from 1 to 65535'],
      ['192.0.2.1:0', 'from 1 to 65535'],
      ['[2001:db8::1', 'bracketed'],
      ['[192.0.2.1]:7947', 'not an IPv6'],
      [':7947', 'host before ":" is empty'],
      ['999.1.1.1', 'not a valid IPv4'],
      ['bad_host!', 'neither an IP address nor a DNS name'],
      ['', 'empty'],
      ['a b', 'whitespace'],
    ];
    cases.forEach(([anchor, why]) => expectProblem({ anchors: ['192.0.2.1', anchor] }, 'anchors[1]', why));
  });
  it('advertise entries that do not parse', () => {
    expectProblem({ advertise: ['2001:db8::1:x'] }, 'advertise[0]', 'brackets');
  });
  it('gossip_listen entries that are not IP addresses', () => {
    expectProblem({ gossip_listen: ['localhost'] }, 'gossip_listen[0]', 'not an IP address');
  });
  it('node, master and nodes[].node that are not DNS labels', () => {
    expectProblem({ node: 'Venus' }, 'node', 'lowercase');
    expectProblem({ master: 'my_master' }, 'master', 'only a-z, 0-9');
    expectProblem({ master: '-mercury' }, 'master', 'start or end');
    expectProblem({ node: 'a'.repeat(64) }, 'node', 'at most 63');
    expectProblem({ master: '' }, 'master', 'empty');
    expectProblem({ nodes: [{ node: 'Bad.Name' }] }, 'nodes[0].node', 'DNS label');
  });
  it('a default node name from a host name that is not a DNS label', () => {
    const raw = baseConfig();
    delete raw.node;
    const r = validateConfig(raw, { hostname: 'my_laptop' });
    assert.equal(r.config, null);
    assert.match(r.problems.join('\n'), /^node: not set, and the host name "my_laptop".*set "node"/m);
  });
  it('duplicate node names', () => {
    expectProblem({ nodes: [{ node: 'venus' }] }, 'nodes[0].node', 'already used');
    expectProblem({ nodes: [{ node: 'b' }, { node: 'b' }] }, 'nodes[1].node', 'already used by nodes[0].node');
  });
  it('an MTU outside 1280..9000', () => {
    expectProblem({ mtu: 1279 }, 'mtu', 'from 1280 to 9000', 'got 1279');
    expectProblem({ mtu: 9001 }, 'mtu', 'from 1280 to 9000', 'got 9001');
  });
  it('a port outside 1..65535', () => {
    expectProblem({ gossip_port: 0 }, 'gossip_port', 'from 1 to 65535');
    expectProblem({ gossip_port: 65536 }, 'gossip_port', 'from 1 to 65535');
  });
  it('an unknown network_mode, runtime or log_level', () => {
    expectProblem({ network_mode: 'bridge' }, 'network_mode', 'host, ipvlan, macvlan', '"bridge"');
    expectProblem({ nodes: [{ node: 'b', network_mode: 'nat' }] }, 'nodes[0].network_mode', 'host, ipvlan, macvlan');
    expectProblem({ runtime: 'docker' }, 'runtime', 'podman, none');
    expectProblem({ log_level: 'trace' }, 'log_level', 'debug, info');
  });
  it('macvlan/ipvlan without iface or without ip', () => {
    expectProblem({ network_mode: 'macvlan', ip: ['2001:db8::1/64'] }, 'iface', 'required when network_mode is macvlan');
    expectProblem({ network_mode: 'ipvlan', iface: 'ens1' }, 'ip', 'required when network_mode is ipvlan');
    expectProblem({ nodes: [{ node: 'b', network_mode: 'macvlan', iface: 'ens1' }] }, 'nodes[0].ip', 'required');
  });
  it('paths that are not absolute and empty images', () => {
    expectProblem({ storage_base: 'srv' }, 'storage_base', 'absolute path');
    expectProblem({ control_socket: 'agent.sock' }, 'control_socket', 'absolute path');
    expectProblem({ images: { k3s: '' } }, 'images.k3s', 'image reference');
  });
  it('bad ulimits', () => {
    expectProblem({ ulimits: { nofle: { soft: 1, hard: 1 } } }, 'ulimits.nofle', 'unknown ulimit', '"nofile"');
    expectProblem({ ulimits: { nofile: { soft: 10, hard: 5 } } }, 'ulimits.nofile', 'soft must not exceed hard');
    expectProblem({ ulimits: { nofile: { soft: 10 } } }, 'ulimits.nofile.hard', 'required');
  });
  it('lists every problem at once, one line each', () => {
    const problems = problemsOf({ master: 'X', mtu: 1, overlay_net: 'x', anchors: ['a b'], network_mode: 'nope', extra: true });
    for (const f of ['master', 'mtu', 'overlay_net', 'anchors[0]', 'network_mode', 'extra']) {
      assert.ok(
        problems.some((p) => p.startsWith(`${f}: `)),
        `missing ${f} in\n${problems.join('\n')}`,
      );
    }
    for (const p of problems) assert.ok(!p.includes('\n'), p);
  });
  it('never echoes a key, even one pasted into another field', () => {
    const problems = problemsOf({ master: OVERLAY_KEY, node: CLUSTER_KEY, anchors: [OVERLAY_KEY + ':x'] });
    assert.ok(problems.some((p) => p.startsWith('master: ')));
  });
});

describe('config/validate: k3s ranges (cluster_cidr, service_cidr)', () => {
  const ok = (patch: Record<string, unknown>) => {
    const r = validateConfig({ ...baseConfig(), ...patch }, { hostname: 'x' });
    assert.deepEqual(r.problems, [], JSON.stringify(patch));
    return r.config!;
  };

  it('defaults follow the family of overlay_net, applied when the fields are absent', () => {
    assert.deepEqual(kubeCidrDefaults('10.0.0.0/8'), { cluster_cidr: '172.28.0.0/16', service_cidr: '172.29.0.0/16' });
    const v6 = ok({ overlay_net: 'fd00:1::/64' });
    assert.equal(v6.cluster_cidr, 'fd42:4865:7074:6f00::/56');
    assert.equal(v6.service_cidr, 'fd42:4865:7074:7000::/112');
    const v4 = ok({ overlay_net: '10.42.0.0/16' });
    assert.equal(v4.cluster_cidr, '172.28.0.0/16');
    // The static defaults are the pair of the default overlay.
    assert.equal(defaults.cluster_cidr, kubeCidrDefaults(defaults.overlay_net).cluster_cidr);
  });

  it('each default pair is disjoint, outside the default overlay, and of a size k3s takes', () => {
    for (const fam of [4, 6] as const) {
      const overlay = fam === 4 ? defaults.overlay_net : 'fd00:1::/64';
      assert.deepEqual(validateConfig({ ...baseConfig(), overlay_net: overlay, ...KUBE_CIDR_DEFAULTS[fam] }).problems, [], `IPv${fam}`);
    }
  });

  it('keeps values that are set, and one that is set beside a defaulted one', () => {
    const c = ok({ overlay_net: 'fd00:1::/64', cluster_cidr: 'fd00:2::/56' });
    assert.equal(c.cluster_cidr, 'fd00:2::/56');
    assert.equal(c.service_cidr, 'fd42:4865:7074:7000::/112');
    assert.equal(ok({ service_cidr: '172.30.0.0/16' }).service_cidr, '172.30.0.0/16');
  });

  it('refuses a value that is not a CIDR', () => {
    expectProblem({ cluster_cidr: '172.28.0.0' }, 'cluster_cidr', 'not a CIDR', 'prefix length is missing', '"172.28.0.0/16"');
    expectProblem({ service_cidr: 'nope/16' }, 'service_cidr', 'not a CIDR');
    expectProblem({ cluster_cidr: 12 }, 'cluster_cidr', 'must be a string');
  });

  it('refuses a range of another family than overlay_net, naming both', () => {
    expectProblem({ cluster_cidr: 'fd00:2::/56' }, 'cluster_cidr', 'IPv6', 'overlay_net "10.0.0.0/8" is IPv4', '"172.28.0.0/16"');
    expectProblem({ overlay_net: 'fd00:1::/64', service_cidr: '172.29.0.0/16' }, 'service_cidr', 'IPv4', 'overlay_net', 'IPv6');
  });

  it('refuses a range inside or around the overlay, naming both fields', () => {
    const line = expectProblem({ cluster_cidr: '10.42.0.0/16' }, 'cluster_cidr', 'overlay_net');
    assert.equal(line, 'cluster_cidr: "10.42.0.0/16" overlaps overlay_net "10.0.0.0/8"; change cluster_cidr to a range outside the overlay');
    expectProblem({ service_cidr: '10.200.0.0/16' }, 'service_cidr', 'overlaps overlay_net');
    expectProblem({ overlay_net: '172.28.5.0/24' }, 'cluster_cidr', 'overlaps overlay_net "172.28.5.0/24"');
  });

  it('refuses a default that the configured overlay_net covers, saying it is the default', () => {
    const problems = problemsOf({ overlay_net: '172.0.0.0/8' });
    assert.ok(
      problems.includes(
        'cluster_cidr: not set, and its default "172.28.0.0/16" overlaps overlay_net "172.0.0.0/8"; set cluster_cidr to a range outside the overlay',
      ),
      problems.join('\n'),
    );
    assert.ok(problems.some((p) => p.startsWith('service_cidr: not set, and its default')));
  });

  it('refuses overlapping pod and service ranges', () => {
    expectProblem({ service_cidr: '172.28.4.0/24' }, 'service_cidr', 'overlaps cluster_cidr "172.28.0.0/16"', 'outside the pod range');
  });

  it("refuses a range that overlaps a node's own network (ip and nodes[].ip), naming both", () => {
    expectProblem({ ip: ['2001:db8::1/64', '10.1.2.3/24'] }, 'overlay_net', 'ip[1] "10.1.2.3/24"', 'not set, and its default');
    expectProblem({ ip: ['172.29.1.10/24'] }, 'service_cidr', 'ip[0]');
    expectProblem({ nodes: [{ node: 'b', ip: ['172.16.0.2/12'] }] }, 'cluster_cidr', 'nodes[0].ip[0] "172.16.0.2/12"');
    expectProblem({ overlay_net: 'fd00:1::/64', ip: ['fd42:4865:7074:7000::5/64'] }, 'service_cidr', 'ip[0]');
    // Another family, or a disjoint network, is fine.
    ok({ ip: ['2001:db8::1/64', '192.0.2.10/24'], nodes: [{ node: 'b', ip: ['192.168.1.2/24'] }] });
  });

  it('refuses sizes k3s cannot use', () => {
    expectProblem({ cluster_cidr: '172.28.0.0/24' }, 'cluster_cidr', 'not wider than the /24');
    expectProblem({ overlay_net: 'fd00:1::/64', cluster_cidr: 'fd00:2::/64' }, 'cluster_cidr', 'not wider than the /64');
    expectProblem({ service_cidr: '172.0.0.0/11' }, 'service_cidr', 'too wide', '/12');
    expectProblem({ overlay_net: 'fd00:1::/64', service_cidr: 'fd00:3::/104' }, 'service_cidr', 'too wide', '/108');
    expectProblem({ service_cidr: '172.29.0.0/29' }, 'service_cidr', 'too narrow', 'cluster DNS');
    ok({ overlay_net: 'fd00:1::/64', service_cidr: 'fd00:3::/108' });
  });
});

describe('config/validate: wesher download', () => {
  it('accepts http(s) base URLs, dropping a trailing slash, and a pinned sha256 (lowercased)', () => {
    const sum = 'AB'.repeat(32);
    const r = validateConfig({ ...baseConfig(), wesher_download: 'https://mirror.example.org/wesher/v0.2.6/', wesher_sha256: sum }, { hostname: 'x' });
    assert.deepEqual(r.problems, []);
    assert.equal(r.config!.wesher_download, 'https://mirror.example.org/wesher/v0.2.6');
    assert.equal(r.config!.wesher_sha256, sum.toLowerCase());
    const http = validateConfig({ ...baseConfig(), wesher_download: 'http://10.9.9.9:8080/w', wesher_sha256: sum }, { hostname: 'x' });
    assert.deepEqual(http.problems, []);
  });

  it('refuses what is not an http(s) URL', () => {
    expectProblem({ wesher_download: 'github.com/costela/wesher' }, 'wesher_download', 'not a URL', defaults.wesher_download);
    expectProblem({ wesher_download: 'ftp://example.org/w' }, 'wesher_download', 'https://', '"ftp"');
    expectProblem({ wesher_download: 5 }, 'wesher_download', 'must be a string');
  });

  it('refuses plain http without a pinned sha256', () => {
    expectProblem({ wesher_download: 'http://example.org/w' }, 'wesher_download', 'plain http', 'wesher_sha256');
  });

  it('never echoes credentials or a query (they would be tokens)', () => {
    const a = expectProblem({ wesher_download: 'https://user:S3cretPassw0rd@example.org/w' }, 'wesher_download', 'user name or password');
    assert.ok(!a.includes('S3cretPassw0rd'));
    const b = expectProblem({ wesher_download: 'https://example.org/w?token=S3cretT0ken' }, 'wesher_download', 'query');
    assert.ok(!b.includes('S3cretT0ken'));
  });

  it('refuses a sha256 that is not 64 hex digits', () => {
    expectProblem({ wesher_sha256: 'abc' }, 'wesher_sha256', '64 hex digits', 'got 3 characters');
    expectProblem({ wesher_sha256: 'g'.repeat(64) }, 'wesher_sha256', '64 hex digits');
    expectProblem({ wesher_sha256: 7 }, 'wesher_sha256', 'string or null');
  });
});

describe('config/validate: admin_pub', () => {
  const pub = 'ed25519:' + Buffer.alloc(32, 7).toString('base64');
  const hint = 'hepto-agent admin init';

  it('accepts the text form admin init prints, and null; keeps it as written', () => {
    for (const v of [pub, null]) {
      const r = validateConfig({ ...baseConfig(), admin_pub: v }, { hostname: 'x' });
      assert.deepEqual(r.problems, []);
      assert.equal(r.config!.admin_pub, v);
    }
  });

  it('refuses a wrong prefix, one line naming the field and where to copy it from', () => {
    const body = Buffer.alloc(32, 7).toString('base64');
    for (const v of ['ssh-ed25519 ' + body, body, 'ED25519:' + body, 'ed448:' + body]) {
      const problems = problemsOf({ admin_pub: v });
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0], /^admin_pub: must start with "ed25519:"/);
      assert.ok(problems[0].includes(hint) && problems[0].includes('admin pub'), problems[0]);
    }
  });

  it('refuses a wrong length, saying how many bytes', () => {
    assert.match(
      expectProblem({ admin_pub: 'ed25519:' + Buffer.alloc(31, 1).toString('base64') }, 'admin_pub', hint),
      /holds 31 bytes, an ed25519 public key has 32/,
    );
    assert.match(expectProblem({ admin_pub: 'ed25519:' + Buffer.alloc(64, 1).toString('base64') }, 'admin_pub', hint), /holds 64 bytes/);
    expectProblem({ admin_pub: 'ed25519:' }, 'admin_pub', 'nothing after', hint);
  });

  it('refuses what is not base64 (url-safe alphabet, spaces, non-canonical)', () => {
    const body = Buffer.alloc(32, 0xfb).toString('base64'); // has "+" and "/"
    assert.ok(/[+/]/.test(body));
    expectProblem({ admin_pub: 'ed25519:' + body.replace(/\+/g, '-').replace(/\//g, '_') }, 'admin_pub', 'not base64', hint);
    expectProblem({ admin_pub: 'ed25519: ' + body.slice(1) }, 'admin_pub', 'not base64');
    expectProblem({ admin_pub: 'ed25519:' + body.slice(0, 42) + 'B=' }, 'admin_pub', 'canonical');
    expectProblem({ admin_pub: 42 }, 'admin_pub', 'string or null');
  });

  it('never echoes the value (it may be a private key pasted by mistake)', () => {
    const secret = Buffer.alloc(64, 9).toString('base64');
    for (const v of [secret, 'ed25519:' + secret]) {
      for (const p of problemsOf({ admin_pub: v })) assert.ok(!p.includes(secret.slice(0, 20)), p);
    }
  });
});

describe('config/validate: the k3s keys (issue 13)', () => {
  const ok = (patch: Record<string, unknown>) => {
    const raw: Record<string, unknown> = { ...baseConfig(), ...patch };
    for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
    const r = validateConfig(raw, { hostname: 'venus' });
    assert.deepEqual(r.problems, []);
    return r.config!;
  };
  it('a non-master with agent_key only: valid, cluster_key null', () => {
    const c = ok({ cluster_key: undefined, agent_key: AGENT_KEY });
    assert.equal(c.cluster_key, null);
    assert.equal(c.agent_key, AGENT_KEY);
  });
  it('a non-master with cluster_key only (a config from before agent_key): still valid, agent_key null', () => {
    const c = ok({});
    assert.equal(c.cluster_key, CLUSTER_KEY);
    assert.equal(c.agent_key, null);
  });
  it('a non-master with both, and a master with both or with cluster_key only: valid', () => {
    ok({ agent_key: AGENT_KEY });
    assert.equal(ok({ node: 'mercury', agent_key: AGENT_KEY }).agent_key, AGENT_KEY);
    assert.equal(ok({ node: 'mercury' }).agent_key, null);
  });
  it('a gossip-only anchor (runtime none) runs no k3s: needs neither key', () => {
    const c = ok({ cluster_key: undefined, runtime: 'none' });
    assert.equal(c.cluster_key, null);
    assert.equal(c.agent_key, null);
  });
});

describe('config/validate: a config waiting to enrol with an invitation', () => {
  const TOKEN = 'hepto1.eyJ2IjoxfQ.c2lnbmF0dXJl.a2V5';
  const pending = { node: 'venus', invite: TOKEN };

  it('needs neither master nor a key; both read empty until the enrolment writes them', () => {
    const { config, problems } = validateConfig(pending, { hostname: 'venus' });
    assert.deepEqual(problems, []);
    assert.ok(config);
    assert.equal(config.invite, TOKEN);
    assert.equal(config.master, '');
    assert.equal(config.overlay_key, '');
    assert.equal(config.cluster_key, null);
  });

  it('refuses what the enrolment brings, naming each field, and never repeats the token', () => {
    const { config, problems } = validateConfig(
      { ...pending, master: 'mercury', agent_key: AGENT_KEY, admin_pub: 'ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=' },
      { hostname: 'venus' },
    );
    assert.equal(config, null);
    for (const f of ['master', 'agent_key', 'admin_pub'])
      assert.ok(
        problems.some((p) => p.startsWith(`${f}: comes from the enrolment with "invite"`)),
        `${f}: ${problems.join('\n')}`,
      );
    for (const p of problems) assert.ok(!p.includes(TOKEN) && !p.includes(AGENT_KEY));
  });

  it('without an invitation, master and overlay_key stay required, and say how to join with one', () => {
    const raw = baseConfig();
    delete raw.master;
    delete raw.overlay_key;
    const { problems } = validateConfig(raw, { hostname: 'venus' });
    assert.ok(
      problems.some((p) => p.startsWith('master: required;') && p.includes('"invite"')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith('overlay_key: required;') && p.includes('"invite"')),
      problems.join('\n'),
    );
    assert.match(expectProblem({ invite: 'not-a-token-at-all-xx' }, 'invite'), /invite/);
  });
});
