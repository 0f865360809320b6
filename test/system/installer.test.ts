/**
 * The installer end to end, as a new user runs it: `curl -sfL .../install.sh |
 * HEPTO_... sh -` inside Debian 12 containers booted with systemd as PID 1,
 * each a machine with a network namespace of its own, with a nested Podman
 * that gets its images as on a new user's machine: the agent builds the
 * wesher image from a release binary it downloads (here the static wesher
 * stand-in, served with its sums file as a mirror of wesher's GitHub
 * release, HEPTO_WESHER_DOWNLOAD), and pulls k3s from docker.io (here a real
 * registry holding the k3s stand-in as rancher/k3s, which the nested Podman
 * reaches through a registries.conf mirror). Real systemd, real Podman, real
 * curl pipe, real registry; the stand-ins prove the agent drives wesher and
 * k3s correctly, not that WireGuard or Kubernetes work.
 *
 * Network: a NetnsTopology with one namespace per machine (2001:db8:<run>::i
 * and 192.0.2.i on eth0, on one bridge), the bridge namespace holding
 * 192.0.2.254 for the servers: the registry runs there, and the file server
 * and the apt proxy (for the machine that installs Podman with apt) run in
 * this process on unix sockets, relayed there. So each machine's wesher binds
 * its own address and port 7946, its wgoverlay link is in its own namespace,
 * and nothing is added to this machine's own network. Every container,
 * namespace and process is removed afterwards, also on failure.
 *
 * The file server is plain http, so every install passes HEPTO_AGENT_SHA256
 * (the installer refuses an unpinned http tarball), and the join line carries
 * it. A second server speaks https (a test CA, given to curl with
 * CURL_CA_BUNDLE) for the unpinned https case. While the first machine
 * installs and while the second joins, argv-sampler sweeps every process's
 * /proc/<pid>/cmdline in that machine, to show that no key is ever on a
 * command line.
 */
import { strict as assert } from 'assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { DEFAULT_IMAGES } from '../../shared/config/images';
import { NetnsTopology, type NetnsHost } from '../helpers/netns';
import { TestRegistry, registriesConf, repoPath } from '../helpers/registry';
import {
  ROOT,
  AptProxy,
  ArgvSampler,
  buildArgvSampler,
  buildRelease,
  check,
  ensureImage,
  envWords,
  FileServer,
  freePort,
  NamespacePort,
  packageFrom,
  run,
  snapshotCheckout,
  removeStaleContainers,
  SystemdContainer,
  waitFor,
  type ArgvSample,
  type Release,
  type Result,
} from './harness';

const SERVICE = 'hepto-agent';
const INSTALLED = ['/usr/local/bin/hepto-agent', '/usr/local/lib/hepto-agent', '/etc/hepto/hepto.json', '/etc/systemd/system/hepto-agent.service', '/usr/local/bin/hepto-uninstall.sh'];
const JOIN_LINE =
  /^curl -sfL (?<install>\S+) \| HEPTO_AGENT_URL=(?<agent>\S+) HEPTO_AGENT_SHA256=(?<agentSha>[0-9a-f]{64}) HEPTO_ANCHORS=(?<anchors>\S+) HEPTO_OVERLAY_KEY=(?<overlayKey>[A-Za-z0-9]{32}) HEPTO_CLUSTER_KEY=(?<clusterKey>[A-Za-z0-9]{32}) HEPTO_MASTER=(?<master>\S+)(?: HEPTO_WESHER_DOWNLOAD=(?<wesherDownload>\S+))?(?: HEPTO_WESHER_SHA256=(?<wesherSha>\S+))?(?: HEPTO_ADMIN_PUB=(?<adminPub>\S+))? sh -$/;

/** The join line's parts (a failed assert when it is not one). */
function parseJoinLine(line: string): Record<'install' | 'agent' | 'agentSha' | 'anchors' | 'overlayKey' | 'clusterKey' | 'master', string> & { wesherDownload?: string; wesherSha?: string; adminPub?: string } {
  const m = JOIN_LINE.exec(line);
  assert.ok(m?.groups, `no join line: ${line}`);
  return m.groups as ReturnType<typeof parseJoinLine>;
}
/** The overlay link's MTU: the default mtu (1400) less WireGuard's 80 bytes. */
const OVERLAY_MTU = 1320;
const WESHER_SHA_LABEL = 'io.hepto.wesher.sha256';
/** Ports of the servers on the bridge namespace's address. */
const FILES_PORT = 8080;
const FILES_TLS_PORT = 8443;
const APT_PORT = 3142;
const REGISTRY_PORT = 5000;

interface StatusJson {
  node: string;
  members: Array<{ name: string; state: string; role: string; overlay_ip: string | null; self?: true; identity_key: string; admitted_at: string | null }>;
  containers: Array<{ name: string; role: string; state: string }>;
  problems: string[];
}

/** The machine's own member in its status. */
function selfMember(doc: StatusJson): StatusJson['members'][number] {
  const me = doc.members.find((m) => m.self === true);
  assert.ok(me, `no self member in status: ${JSON.stringify(doc.members.map((m) => m.name))}`);
  assert.equal(me.name, doc.node);
  return me;
}

/** The public half of a machine's identity key, `ed25519:` + identity.json's "public" (read there, so the private half never leaves it). */
async function identityKey(c: SystemdContainer, node: string): Promise<string> {
  const pub = (await c.ok(`node -p 'JSON.parse(require("fs").readFileSync("/srv/${node}/identity.json", "utf8")).public'`)).trim();
  assert.match(pub, /^[A-Za-z0-9+/]{43}=$/);
  return `ed25519:${pub}`;
}

/** What the installer tells a joiner to have the admin run (its last line). */
function admitNote(node: string, identity: string): string {
  return `[WARN]  this machine must be admitted before the cluster accepts it: on the machine with the admin key, run: hepto-agent admit ${node} --identity ${identity}`;
}

/** A join line's word as the shell reads it: the installer single-quotes what needs it. */
function unquote(word: string): string {
  return /^'.*'$/.test(word) ? word.slice(1, -1).replace(/'\\''/g, "'") : word;
}

/** wgoverlay in a machine's namespace: MTU and addresses, or null when it is not there. */
async function overlayLink(host: NetnsHost): Promise<{ mtu: number; addresses: string[] } | null> {
  const r = await run('ip', ['-n', host.ns, '-j', 'addr', 'show', 'dev', 'wgoverlay']);
  if (r.code !== 0) return null;
  const [link] = JSON.parse(r.stdout) as Array<{ mtu: number; addr_info: Array<{ local: string; prefixlen: number }> }>;
  return link ? { mtu: link.mtu, addresses: link.addr_info.map((a) => `${a.local}/${a.prefixlen}`) } : null;
}

/** What a re-run must leave alone: service identity and every installed file. */
async function snapshot(c: SystemdContainer): Promise<string> {
  return c.ok(
    `systemctl show -p MainPID -p ActiveEnterTimestamp -p InvocationID ${SERVICE}; ` +
      'stat -c "%n %i %Y %a" /etc/hepto/hepto.json /etc/systemd/system/hepto-agent.service /usr/local/bin/hepto-agent /usr/local/bin/hepto-uninstall.sh /usr/local/lib/hepto-agent/*; ' +
      'sha256sum /etc/hepto/hepto.json /etc/systemd/system/hepto-agent.service /usr/local/bin/hepto-agent /usr/local/bin/hepto-uninstall.sh',
  );
}

async function statusJson(c: SystemdContainer): Promise<StatusJson> {
  return JSON.parse(await c.ok('hepto-agent status --json')) as StatusJson;
}

async function statusText(c: SystemdContainer): Promise<string> {
  return (await c.ok(`systemctl show -p StatusText --value ${SERVICE}`)).trim();
}

/** Lines of `text` that contain `secret`, with the secret masked, so a failure never prints it. */
function leaks(text: string, secret: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.includes(secret))
    .map((l) => {
      const masked = l.split(secret).join('[KEY]');
      const at = masked.indexOf('[KEY]');
      return masked.slice(0, 80) + (at > 80 ? ` … ${masked.slice(Math.max(80, at - 60), at + 20)}` : '');
    });
}

/** Writes the canaries' command lines, found in what a sampler saw (the test's proof that it sees short-lived commands). */
const CANARIES = 10;
// Each sed lives about 50 ms (it waits for its input): as short as the installer's own quick commands, but
// long enough that a loaded 2-core machine still schedules the sampler while it runs.
const CANARY_SCRIPT = `i=0; while [ $i -lt ${CANARIES} ]; do i=$((i + 1)); (sleep 0.05; printf x) | sed "s/x/hepto-argv-canary-$i/" >/dev/null; done`;

/**
 * No secret in any command line the sampler saw; it saw the installer's own
 * short-lived commands, and the sed canaries (a key put on sed's command
 * line, the mistake this guards against, would have been caught as they were).
 */
function assertNoKeyInArgv(where: string, s: ArgvSample, secrets: string[], expected: RegExp[]): void {
  const caught = new Set(s.cmdlines.flatMap((l) => [...l.matchAll(/^sed s\/x\/hepto-argv-canary-(\d+)\/$/g)].map((m) => m[1]))).size;
  // Stated in the test's output: how many samples this took.
  console.log(
    `      argv sampler on ${where}: ${s.sweeps} sweeps of /proc/*/cmdline in ${(s.ms / 1000).toFixed(1)} s (${(s.ms * 1000 / Math.max(1, s.sweeps)).toFixed(0)} µs each, longest ${s.maxSweepUs} µs), ` +
      `${s.reads} command lines read, ${s.cmdlines.length} distinct; sed canaries caught: ${caught}/${CANARIES}`,
  );
  for (const [i, k] of secrets.entries()) {
    const hits = s.cmdlines.flatMap((l) => leaks(l, k));
    assert.deepEqual(hits, [], `secret #${i} is on a command line (shown with it replaced by [KEY])`);
  }
  assert.ok(s.sweeps >= 1000, `only ${s.sweeps} sweeps: too few to mean anything`);
  assert.ok(caught >= CANARIES / 2, `the sampler caught only ${caught} of ${CANARIES} short-lived sed commands`);
  for (const re of expected) assert.ok(s.cmdlines.some((l) => re.test(l)), `the sampler never saw ${re}: ${s.cmdlines.length} command lines`);
}

/** Nothing of the installer's is left: no file, no unit known to systemd, no temp dir. */
async function assertNothingInstalled(c: SystemdContainer): Promise<void> {
  // /etc/hepto may keep only the cluster's admin key, which the uninstaller never deletes.
  const left = await c.exec(
    `for p in ${INSTALLED.join(' ')} /tmp/hepto-install.* /usr/local/lib/.hepto* /etc/hepto/*; do [ -e "$p" ] && [ "$p" != /etc/hepto/admin.key ] && echo "$p"; done; true`,
  );
  assert.equal(left.stdout.trim(), '', `left behind: ${left.stdout}`);
  const unit = await c.exec(`systemctl cat ${SERVICE}`);
  assert.notEqual(unit.code, 0, 'systemd still knows hepto-agent.service');
}

/** The installer failed with exactly one clear [ERROR] line matching `re`. */
function assertOneError(r: Result, re: RegExp): string {
  assert.notEqual(r.code, 0, `expected a failure, got exit 0:\n${r.stderr}`);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('[ERROR]'));
  assert.equal(errors.length, 1, `expected one [ERROR] line:\n${r.stderr}`);
  assert.match(errors[0], re);
  assert.equal(r.stdout, '', `unexpected stdout: ${r.stdout}`);
  return errors[0];
}

describe('system: installer end to end (systemd container, real Podman, curl | sh)', function () {
  // The first run ever debootstraps and bakes the images (minutes); later runs load them from the cache.
  this.timeout(25 * 60_000);

  const containers: SystemdContainer[] = [];
  const ports: NamespacePort[] = [];
  let work: string;
  let release: Release;
  let server: FileServer;
  /** The same files over https (a test CA: CURL_CA_BUNDLE), for an unpinned tarball. */
  let tlsServer: FileServer;
  let caBundle: string;
  let samplerBin: string;
  let aptProxy: AptProxy;
  let aptPort: NamespacePort;
  let registry: TestRegistry;
  let topo: NetnsTopology;
  let baseImage: string;
  let bakedImage: string;
  /** The served wesher release: its base URL, the binary's name (wesher-<arch>) and sha256. */
  let wesher: { url: string; file: string; sha256: string };
  /** What the installs pass for the wesher release, as a user with a mirror would. */
  let wesherEnv: Record<string, string>;
  const K3S_REPO = repoPath(DEFAULT_IMAGES.k3s).split(':')[0];
  const K3S_TAG = DEFAULT_IMAGES.k3s.split(':').pop()!;

  const boot = async (image: string, hostname: string, host: NetnsHost): Promise<SystemdContainer> => {
    const c = await SystemdContainer.boot({ image, hostname, netns: host.ns });
    containers.push(c);
    // Test-environment setup, never done by install.sh:
    // - this kernel has no WireGuard module, so the agent makes its overlay link
    //   as a veth (its one test hook, read from the service's EnvironmentFile);
    await c.writeFile(
      '/etc/default/hepto-agent',
      '# hepto system test only: this kernel has no WireGuard, so the agent makes wgoverlay as a veth.\nHEPTO_TEST_LINK_KIND=veth\n',
    );
    // - docker.io is out of reach: the nested Podman pulls it from the test registry;
    await c.writeFile('/etc/containers/registries.conf.d/50-hepto-test.conf', `# hepto system test only: docker.io is the test registry.\n${registriesConf(registry.host, ['docker.io'])}`);
    // - the namespace has no route out: apt goes through the test's proxy, to the Debian mirrors only.
    await c.writeFile('/etc/apt/apt.conf.d/99hepto-test-proxy', `// hepto system test only\nAcquire::http::Proxy "${aptPort.base}/";\n`);
    aptProxy.allowSources(await c.ok('cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true'));
    return c;
  };
  const install = (env: Record<string, string>): string => `curl -sfL ${server.url('install.sh')} | ${envWords(env)} sh -`;
  const agentUrl = (): string => server.url(release.tarball);
  /** A plain http tarball needs its pin. */
  const agentEnv = (): Record<string, string> => ({ HEPTO_AGENT_URL: agentUrl(), HEPTO_AGENT_SHA256: release.sha256 });

  /** The nested Podman's images: the agent built wesher from the served binary and pulled k3s from the registry. */
  const assertImagesFromSources = async (c: SystemdContainer, host: NetnsHost): Promise<void> => {
    const label = (await c.ok(`podman image inspect --format '{{ index .Labels "${WESHER_SHA_LABEL}" }}' ${DEFAULT_IMAGES.wesher}`)).trim();
    assert.equal(label, wesher.sha256, 'the wesher image was not built from the served binary');
    assert.ok(server.requests.includes('wesher/wesher.sha256sums'), `wesher.sha256sums was never fetched: ${server.requests.join(' ')}`);
    assert.ok(server.requests.includes(`wesher/${wesher.file}`), `${wesher.file} was never fetched: ${server.requests.join(' ')}`);
    const digest = (await c.ok(`podman image inspect --format '{{.Digest}}' ${DEFAULT_IMAGES.k3s}`)).trim();
    assert.equal(digest, await registry.digest(K3S_REPO, K3S_TAG), 'the k3s image is not the one in the registry');
    const pulls = registry.requests().filter((r) => r.method === 'GET' && r.path === `/v2/${K3S_REPO}/manifests/${K3S_TAG}` && r.status === 200);
    assert.ok(
      pulls.some((r) => r.from === host.v4),
      `no pull of ${K3S_REPO}:${K3S_TAG} from ${host.v4}: ${JSON.stringify(registry.requests().slice(-5))}`,
    );
    const names = await c.ok("podman images --format '{{.Repository}}:{{.Tag}}'");
    assert.doesNotMatch(names, /hepto-standin/, `a stand-in was loaded under its own name:\n${names}`);
  };

  /** wgoverlay in the machine's namespace holds the node's overlay IP, at mtu - 80. */
  const assertOverlayLink = async (c: SystemdContainer, host: NetnsHost, node: string): Promise<void> => {
    const ip = await waitFor(`${node}'s overlay IP in status`, async () => (await statusJson(c)).members.find((m) => m.name === node)?.overlay_ip, 30_000);
    // wesher resets the MTU to 1420 when a peer comes or goes; the agent sets it back.
    await waitFor(
      `wgoverlay in ${host.ns} with ${ip} and MTU ${OVERLAY_MTU}`,
      async () => {
        const link = await overlayLink(host);
        return link !== null && link.mtu === OVERLAY_MTU && link.addresses.includes(`${ip}/${ip.includes(':') ? 128 : 32}`) && link;
      },
      60_000,
    );
  };

  before(async function () {
    this.timeout(25 * 60_000);
    await removeStaleContainers();
    work = mkdtempSync(path.join(tmpdir(), 'hepto-systest-'));
    topo = NetnsTopology.create(3, { services: true });
    const svc = topo.services!;
    baseImage = await ensureImage('base');
    bakedImage = await ensureImage('baked');
    release = await buildRelease(path.join(work, 'release'));
    server = await FileServer.start(release.dir, { socket: path.join(work, 'files.sock') });
    ports.push(await NamespacePort.open(svc.ns, svc.v4, FILES_PORT, path.join(work, 'files.sock')));
    server.base = ports[0].base;
    // A test CA's certificate for the bridge address; curl in the machines trusts it through CURL_CA_BUNDLE only.
    await check('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=hepto-systest',
      '-addext', `subjectAltName=IP:${svc.v4}`, '-keyout', path.join(work, 'tls.key'), '-out', path.join(work, 'tls.crt'),
    ]);
    caBundle = readFileSync(path.join(work, 'tls.crt'), 'utf8');
    tlsServer = await FileServer.start(release.dir, { socket: path.join(work, 'files-tls.sock'), tls: { key: readFileSync(path.join(work, 'tls.key'), 'utf8'), cert: caBundle } });
    const tlsPort = await NamespacePort.open(svc.ns, svc.v4, FILES_TLS_PORT, path.join(work, 'files-tls.sock'));
    ports.push(tlsPort);
    tlsServer.base = tlsPort.base.replace(/^http:/, 'https:');
    samplerBin = await buildArgvSampler(work);
    aptProxy = await AptProxy.start(path.join(work, 'apt.sock'));
    aptPort = await NamespacePort.open(svc.ns, svc.v4, APT_PORT, path.join(work, 'apt.sock'));
    ports.push(aptPort);
    // The wesher "release": the static stand-in and its sums file, served as a mirror would.
    const wesherDir = path.join(release.dir, 'wesher');
    const built = await check('bash', [path.join(ROOT, 'test/fixtures/stand-in-images.sh'), 'wesher-binary', wesherDir], { timeoutMs: 5 * 60_000 });
    const file = path.basename(built.trim().split('\n').pop()!);
    const sums = readFileSync(path.join(wesherDir, 'wesher.sha256sums'), 'utf8');
    const sha256 = new RegExp(`^([0-9a-f]{64}) [ *]${file}$`, 'm').exec(sums)?.[1];
    assert.ok(sha256, `no line for ${file} in wesher.sha256sums:\n${sums}`);
    wesher = { url: server.url('wesher'), file, sha256 };
    // Plain http: so the pin is required (and checked by the agent against the binary and the sums file).
    wesherEnv = { HEPTO_WESHER_DOWNLOAD: wesher.url, HEPTO_WESHER_SHA256: wesher.sha256 };
    // k3s: the stand-in, pushed as rancher/k3s to a registry in the bridge namespace.
    registry = await TestRegistry.start({ netns: svc.ns, address: svc.v4, port: REGISTRY_PORT, accessLog: true });
    await check('bash', [path.join(ROOT, 'test/fixtures/stand-in-images.sh'), 'build'], { timeoutMs: 5 * 60_000 });
    await check('nsenter', [`--net=/run/netns/${svc.ns}`, 'podman', 'push', '--quiet', '--tls-verify=false', 'localhost/hepto-standin-k3s:test', `docker://${registry.ref(DEFAULT_IMAGES.k3s)}`], {
      timeoutMs: 120_000,
    });
  });

  after(async function () {
    this.timeout(180_000);
    const quietly = async (what: string, f: () => Promise<unknown> | unknown): Promise<void> => {
      try {
        await f();
      } catch (e) {
        console.error(`cleanup: ${what}: ${(e as Error).message}`);
      }
    };
    // HEPTO_SYSTEST_LOGS=DIR keeps each machine's journal, nested containers' logs and links there, to look into a failure.
    const keep = process.env.HEPTO_SYSTEST_LOGS;
    if (keep) {
      await quietly('saving logs', async () => {
        mkdirSync(keep, { recursive: true });
        for (const c of containers) {
          const dump = await c.exec(
            'journalctl --no-pager -o short-precise; for n in $(podman ps -a --format "{{.Names}}" 2>/dev/null); do echo "=== podman logs $n"; podman logs "$n" 2>&1 | tail -n 200; done; echo "=== ip -d addr"; ip -d addr',
            { timeoutMs: 60_000 },
          );
          writeFileSync(path.join(keep, `${c.name}.log`), dump.stdout + dump.stderr);
        }
      });
    }
    await quietly('containers', () => Promise.all(containers.map((c) => c.remove())));
    await quietly('forwarders', () => Promise.all(ports.map((p) => p.close())));
    await quietly('registry', () => registry?.stop());
    await quietly('apt proxy', () => aptProxy?.close());
    await quietly('file server', () => server?.close());
    await quietly('https file server', () => tlsServer?.close());
    // Namespaces last: deleting them also kills anything left running in them.
    await quietly('namespaces', () => topo?.destroy());
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('npm run package is reproducible: two builds of one checkout give the same bytes', async function () {
    this.timeout(5 * 60_000);
    // From the committed tree: the working tree may change under a build while others edit it.
    const checkout = await snapshotCheckout(path.join(work, 'checkout'));
    const first = await packageFrom(checkout, path.join(work, 'repro-1'));
    const second = await packageFrom(checkout, path.join(work, 'repro-2'));
    assert.equal(second, first);
  });

  describe('first machine: a new cluster', () => {
    let n1: SystemdContainer;
    let h1: NetnsHost;
    // A gossip port of its own, to see HEPTO_GOSSIP_PORT through (each machine has its own namespace).
    const port1 = 7951;
    let env1: Record<string, string>;
    let keys: string[];
    let installerLog: string;
    let joinLine: string;
    /** Sweeps every command line on n1 from before the install until both containers run. */
    let sampler: ArgvSampler | undefined;

    before(async () => {
      h1 = topo.hosts[0];
      n1 = await boot(bakedImage, 'n1', h1);
      // No HEPTO_ADVERTISE: the agent advertises the namespace's addresses, IPv6 first, and wesher binds that one.
      env1 = { ...agentEnv(), HEPTO_NODE: 'n1', HEPTO_GOSSIP_PORT: String(port1), ...wesherEnv };
    });

    it('curl | sh generates both keys, starts the service, and prints the exact join line, tarball pin and wesher mirror included', async () => {
      sampler = await ArgvSampler.start(n1, samplerBin);
      const r = await n1.exec(install(env1), { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      installerLog = r.stderr;
      joinLine = r.stdout.trim();
      const m = parseJoinLine(joinLine);
      assert.equal(m.install, server.url('install.sh'));
      assert.equal(m.agent, agentUrl());
      // The pin is the sha256 of the tarball installed here, so the next machine checks the same bytes.
      assert.equal(m.agentSha, release.sha256);
      assert.equal((await n1.ok(`cat /usr/local/lib/hepto-agent/${release.version}/.tarball-sha256`)).trim(), m.agentSha);
      assert.equal(unquote(m.anchors), `[${h1.v6}]:${port1},${h1.v4}:${port1}`);
      assert.equal(m.master, 'n1');
      // The next machines need the same wesher mirror, and a plain http one only works with its pin.
      assert.equal(m.wesherDownload, wesher.url);
      assert.equal(m.wesherSha, wesher.sha256);
      assert.match(r.stderr, /HEPTO_WESHER_SHA256 pins the wesher binary for this machine's architecture/);
      // install.sh itself comes over plain http here: the installer says what that risks.
      assert.match(r.stderr, /^\[WARN\]  the join line fetches install\.sh over plain http .*serve install\.sh over https/m);
      keys = [m.overlayKey, m.clusterKey];
      assert.notEqual(keys[0], keys[1]);
      assert.equal((await n1.ok(`systemctl is-active ${SERVICE}`)).trim(), 'active');
      assert.equal((await n1.ok('systemctl is-enabled podman.socket')).trim(), 'enabled');
      const conf = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      assert.equal(conf.overlay_key, keys[0]);
      assert.equal(conf.cluster_key, keys[1]);
      assert.equal(conf.master, 'n1');
      assert.equal(conf.gossip_port, port1);
      assert.equal(conf.wesher_download, wesher.url);
      assert.equal(conf.wesher_sha256, wesher.sha256);
      // A new cluster makes its admin key here (0600) and every config, the join line's included, gets its public half.
      assert.equal((await n1.ok('stat -c %a /etc/hepto/admin.key')).trim(), '600');
      const adminPub = (await n1.ok('hepto-agent admin pub')).trim();
      assert.match(adminPub, /^ed25519:[A-Za-z0-9+/]{43}=$/);
      assert.equal(conf.admin_pub, adminPub);
      assert.equal(unquote(m.adminPub ?? ''), adminPub, 'the join line carries admin_pub');
      assert.ok(!(await n1.ok('cat /etc/hepto/admin.key')).includes(keys[0]));
      assert.equal((await n1.ok('stat -c %a /etc/hepto/hepto.json /etc/hepto')).trim(), '600\n700');
      // Pinned names: the machine with the admin key admitted its own node, and said so once.
      const me = selfMember(await statusJson(n1));
      assert.equal(me.identity_key, await identityKey(n1, 'n1'));
      assert.ok(me.admitted_at !== null && !Number.isNaN(Date.parse(me.admitted_at)), `n1 shows no admission: ${JSON.stringify(me)}`);
      const admitted = r.stderr.split('\n').filter((l) => /admitted this machine/.test(l));
      assert.deepEqual(admitted, [`[INFO]  admitted this machine (n1, identity ${me.identity_key}) with the cluster's admin key; its agent spreads the admission`]);
      assert.doesNotMatch(r.stderr, /must be admitted|could not admit/);
      await n1.ok('test -s /srv/n1/admission.json');
    });

    it('systemctl status shows the mesh and both containers; status --json has them running', async () => {
      const line = await waitFor('the STATUS line to show both containers running', async () => {
        const t = await statusText(n1);
        return /^mesh 1\/1 alive · wesher running · k3s running$/.test(t) && t;
      }, 120_000);
      const st = await n1.exec(`systemctl status ${SERVICE} --no-pager`);
      assert.ok(st.stdout.includes(`Status: "${line}"`), st.stdout);
      const doc = await statusJson(n1);
      const states = Object.fromEntries(doc.containers.map((c) => [c.name, c.state]));
      assert.deepEqual(states, { 'hepto-n1-wesher': 'running', 'hepto-n1-k3s': 'running' });
      assert.equal((await n1.ok("podman ps --format '{{.Names}}' | sort")).trim(), 'hepto-n1-k3s\nhepto-n1-wesher');
    });

    it('no key on any command line while n1 installed, generated its keys and started both containers (argv sampled all along)', async () => {
      assert.ok(sampler, 'the sampler did not start');
      await n1.ok(CANARY_SCRIPT);
      const s = await sampler.stop();
      sampler = undefined;
      assertNoKeyInArgv('n1 (new cluster)', s, [...keys, Buffer.from(keys[0], 'utf8').toString('base64')], [
        // The installer's own commands, short-lived ones included: the sampler watched the install.
        /dist\/agent\/cli\.js keygen$/,
        /-e .*const \[file, out, changes\] = process\.argv/,
        /^sha256sum \/tmp\/hepto-install\.\S+\/agent\.tar\.gz$/,
        /^tar -xzf \/tmp\/hepto-install\./,
        // ...and, in the nested containers' PID namespaces, k3s started with its token in the environment.
        /\bserver --cluster-cidr \S+ --service-cidr \S+ --node-name n1\b/,
      ]);
    });

    it('the agent built the wesher image from the served release binary and pulled k3s from the registry', async () => {
      await assertImagesFromSources(n1, h1);
    });

    it("wgoverlay is in n1's own namespace, with its overlay IP and MTU 1320 (mtu - 80), and wesher listens on n1's address", async () => {
      await assertOverlayLink(n1, h1, 'n1');
      const listening = await run('ip', ['netns', 'exec', h1.ns, 'ss', '-Hltn', 'sport = :7946']);
      assert.match(listening.stdout, new RegExp(`\\[${h1.v6}\\]:7946`), `wesher does not listen on [${h1.v6}]:7946:\n${listening.stdout}${listening.stderr}`);
      assert.equal(await overlayLink({ ...h1, ns: topo.hosts[1].ns }), null, 'wgoverlay leaked into another namespace');
    });

    it('the keys appear only in the join line: not in the installer log, the journal or status', async () => {
      const journal = await n1.ok('journalctl --no-pager -o short');
      const status = await n1.ok('hepto-agent status --json; hepto-agent status; systemctl status hepto-agent --no-pager || true');
      for (const k of keys) {
        assert.ok(!installerLog.includes(k), 'a key is in the installer log');
        assert.deepEqual(leaks(journal, k), [], 'a key is in the journal (lines shown with the key replaced by [KEY])');
        assert.ok(!status.includes(k), 'a key is in status');
      }
      assert.match(journal, /agent started/);
    });

    it('hepto-agent doctor passes on the installed node and sees its own agent on the gossip port', async () => {
      const r = await n1.exec('hepto-agent doctor');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok {4}podman: the Podman API answers on \/run\/podman\/podman\.sock$/m);
      assert.match(r.stdout, /^ok {4}config-mode: \/etc\/hepto\/hepto\.json is 0600, owned by root$/m);
      assert.match(r.stdout, new RegExp(`^ok {4}gossip-port: \\[::\\]:${port1} is in use by the running hepto-agent$`, 'm'));
      assert.match(r.stdout, /^doctor: all checks passed/m);
    });

    it('sd-notify: a Type=notify unit stays activating until ready(), then shows its STATUS line', async () => {
      // The installed agent's notifier, in a transient unit with NotifyAccess=main:
      // this passes only if systemd attributes the helper's message to our main PID.
      const probe = [
        "const fs = require('fs');",
        `const { createNotifier } = require('/usr/local/lib/hepto-agent/${release.version}/dist/agent/daemon/sd-notify.js');`,
        `const { createLogger } = require('/usr/local/lib/hepto-agent/${release.version}/dist/shared/log.js');`,
        'const n = createNotifier({ env: process.env, logger: createLogger() });',
        "n.status('waiting for the go file');",
        "const t = setInterval(() => { if (fs.existsSync('/run/probe-go')) { clearInterval(t); n.status('probe ready'); n.ready(); } }, 50);",
        '// Stay up after READY, as a daemon does.',
        'setInterval(() => undefined, 1 << 30);',
      ].join('\n');
      await n1.ok(`cat > /root/probe.js <<'EOF'\n${probe}\nEOF`);
      await n1.ok('rm -f /run/probe-go; systemd-run --unit hepto-probe -p Type=notify -p NotifyAccess=main --no-block /usr/bin/node /root/probe.js');
      try {
        await waitFor('the probe to report its first status', async () => (await n1.ok('systemctl show -p StatusText --value hepto-probe')).trim() === 'waiting for the go file', 30_000, 200);
        assert.equal((await n1.exec('systemctl is-active hepto-probe')).stdout.trim(), 'activating');
        await n1.ok('touch /run/probe-go');
        await waitFor('the probe to become active', async () => (await n1.exec('systemctl is-active hepto-probe')).stdout.trim() === 'active', 30_000, 200);
        assert.match(await n1.ok('systemctl status hepto-probe --no-pager || true'), /Status: "probe ready"/);
      } finally {
        await n1.exec('systemctl stop hepto-probe; systemctl reset-failed hepto-probe; rm -f /root/probe.js /run/probe-go');
      }
    });

    it('a re-run with the same variables changes nothing and restarts nothing', async () => {
      const before = await snapshot(n1);
      const r = await n1.exec(install(env1), { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '', 'a re-run must not print a new join line');
      assert.match(r.stderr, /nothing changed; hepto-agent keeps running/);
      assert.equal(await snapshot(n1), before);
      const conf = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      assert.equal(conf.overlay_key, keys[0], 'a re-run must keep the keys');
    });

    it('HEPTO_DRY_RUN=1 on an installed node names what would change and changes nothing', async () => {
      const before = await snapshot(n1);
      const otherPin = 'f'.repeat(64);
      const r = await n1.exec(install({ ...env1, HEPTO_GW: '192.0.2.254', HEPTO_WESHER_SHA256: otherPin, HEPTO_DRY_RUN: '1' }), { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /would set gw = \["192\.0\.2\.254"\] in \/etc\/hepto\/hepto\.json/);
      assert.match(r.stderr, new RegExp(`would set wesher_sha256 = "${otherPin}" in /etc/hepto/hepto\\.json`));
      assert.doesNotMatch(r.stderr, /would set (wesher_download|node|gossip_port)/, 'an unchanged field is named');
      assert.match(r.stderr, /would replace \/etc\/hepto\/hepto\.json/);
      assert.match(r.stderr, /would \(re\)start hepto-agent/);
      assert.match(r.stderr, /dry run done: would change \/etc\/hepto\/hepto\.json$/m);
      assert.equal(await snapshot(n1), before);
    });

    it('changing one variable replaces only the config and restarts the service once', async () => {
      const confBefore = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      const pidBefore = (await n1.ok(`systemctl show -p MainPID --value ${SERVICE}`)).trim();
      const others = await n1.ok('stat -c "%n %i %Y" /etc/systemd/system/hepto-agent.service /usr/local/bin/hepto-agent /usr/local/lib/hepto-agent/*');
      // n1's own address (wesher binds the node's ip): the same one it advertised.
      const r = await n1.exec(install({ ...env1, HEPTO_IP: `${h1.v6}/64` }), { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /done: changed \/etc\/hepto\/hepto\.json$/m);
      const confAfter = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      assert.deepEqual(confAfter, { ...confBefore, ip: [`${h1.v6}/64`] });
      assert.equal(await n1.ok('stat -c "%n %i %Y" /etc/systemd/system/hepto-agent.service /usr/local/bin/hepto-agent /usr/local/lib/hepto-agent/*'), others);
      const pidAfter = (await n1.ok(`systemctl show -p MainPID --value ${SERVICE}`)).trim();
      assert.notEqual(pidAfter, pidBefore);
      assert.equal((await n1.ok(`systemctl show -p NRestarts --value ${SERVICE}`)).trim(), '0', 'the agent crashed and was restarted by systemd');
      await waitFor('the agent to show both containers again', async () => /wesher running · k3s running/.test(await statusText(n1)), 60_000);
      // The restarted agent kept its admission (admission.json): nothing to admit again.
      assert.doesNotMatch(r.stderr, /admitted this machine|must be admitted|could not admit/);
      assert.notEqual(selfMember(await statusJson(n1)).admitted_at, null);
    });

    it('an upgrade (a new tarball, with its pin) replaces the agent in place, keeps the config, restarts once', async function () {
      this.timeout(5 * 60_000);
      // The same build under a new version number, as a release server would offer it.
      const next = `${release.version}-up1`;
      const name = `hepto-agent-${next}.tar.gz`;
      await check('sh', [
        '-c',
        'set -e; d=$(mktemp -d); tar -xzf "$1/$2" -C "$d"; mv "$d/hepto-agent-$3" "$d/hepto-agent-$4"; ' +
          'sed -i "s/\\"version\\": *\\"$3\\"/\\"version\\": \\"$4\\"/" "$d/hepto-agent-$4/package.json"; ' +
          'tar -C "$d" -czf "$1/$5" "hepto-agent-$4"; (cd "$1" && sha256sum "$5" > "$5.sha256"); rm -rf "$d"',
        'sh', release.dir, release.tarball, release.version, next, name,
      ]);
      const confBefore = await n1.ok('sha256sum /etc/hepto/hepto.json /etc/systemd/system/hepto-agent.service');
      const pidBefore = (await n1.ok(`systemctl show -p MainPID --value ${SERVICE}`)).trim();
      const sha = readFileSync(path.join(release.dir, `${name}.sha256`), 'utf8').split(' ')[0];
      const r = await n1.exec(install({ ...env1, HEPTO_IP: `${h1.v6}/64`, HEPTO_AGENT_URL: server.url(name), HEPTO_AGENT_SHA256: sha }), { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`done: changed /usr/local/lib/hepto-agent/${next.replace(/\./g, '\\.')} /usr/local/bin/hepto-agent$`, 'm'));
      assert.equal(await n1.ok('sha256sum /etc/hepto/hepto.json /etc/systemd/system/hepto-agent.service'), confBefore);
      assert.equal((await n1.ok('ls /usr/local/lib/hepto-agent')).trim(), next, 'the old version is still there');
      assert.equal((await n1.ok('hepto-agent --version')).trim(), next);
      assert.notEqual((await n1.ok(`systemctl show -p MainPID --value ${SERVICE}`)).trim(), pidBefore);
      assert.equal((await statusJson(n1)).members.length, 1);
    });

    describe('second machine: joins through the anchor with the printed line', () => {
      let n2: SystemdContainer;
      let h2: NetnsHost;

      before(async () => {
        h2 = topo.hosts[1];
        n2 = await boot(bakedImage, 'n2', h2);
      });

      /** Sweeps every command line on n2 from before the join until both its containers run. */
      let sampler2: ArgvSampler | undefined;

      it('the printed line, run verbatim, joins with the pinned tarball; both agents list two alive members', async () => {
        const port2 = 7952;
        sampler2 = await ArgvSampler.start(n2, samplerBin);
        const asked = server.requests.length;
        // Typed into a root shell, as a user does: on sh's stdin, not its command line.
        const r = await n2.exec(`export HEPTO_NODE=n2 HEPTO_GOSSIP_PORT=${port2}\n${joinLine}\n`, { timeoutMs: 180_000, stdin: true });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.equal(r.stdout, '', 'a joining machine prints no join line');
        for (const k of keys) assert.ok(!r.stderr.includes(k), 'a key is in the installer log');
        // Checked against the pin in the line, not against a .sha256 from the server.
        assert.match(r.stderr, new RegExp(`checksum verified \\(${release.sha256}\\)`));
        const fetched = server.requests.slice(asked);
        assert.ok(fetched.includes(release.tarball), `the tarball was not fetched: ${fetched.join(' ')}`);
        assert.ok(!fetched.some((f) => f.endsWith('.sha256')), `a .sha256 was fetched: ${fetched.join(' ')}`);
        // Pinned names: the join line carries admin_pub, so n2 is refused until the admin admits it.
        // Its installer ends with the command the admin runs, with n2's identity key (public).
        const id2 = await identityKey(n2, 'n2');
        assert.equal(selfMember(await statusJson(n2)).identity_key, id2);
        assert.equal(r.stderr.trimEnd().split('\n').pop(), admitNote('n2', id2));
        assert.doesNotMatch(r.stderr, /admitted this machine/, 'a joiner without the admin key admitted itself');
        const own = await statusJson(n2);
        assert.equal(selfMember(own).admitted_at, null);
        assert.ok(own.problems.some((p) => p.startsWith('this node has no admission for its identity') && p.endsWith(`run: hepto-agent admit n2 --identity ${id2}`)), own.problems.join('\n'));
        // n1 refuses it as it tries to join, and never lists it alive.
        // (Refused in the handshake, `refused 1 connection from <addr> (claiming to be "n2"): ...`, or
        // later in gossip, `refused "n2" at <addr>: ...`; either way naming the command that admits it.)
        let n1Problems: string[] = [];
        await waitFor(
          'n1 to refuse n2 (not admitted)',
          async () => {
            n1Problems = (await statusJson(n1)).problems;
            return n1Problems.some((p) => /^refused (\d+ connections? from \S+ \(claiming to be "n2"\)|"n2" at \S+):/.test(p) && p.includes(`"n2" is not admitted`) && p.includes(`hepto-agent admit n2 --identity ${id2}`));
          },
          60_000,
        ).catch((e: Error) => assert.fail(`${e.message}\nn1's problems:\n${n1Problems.join('\n')}`));
        assert.ok(!(await statusJson(n1)).members.some((m) => m.name === 'n2' && m.state === 'alive'), 'n1 lists n2 alive before its admission');
        assert.equal((await n2.exec('test -e /srv/n2/admission.json')).code, 1, 'n2 holds an admission before the admin made one');
        // The admin runs the printed command on n1, which holds the admin key.
        const admit = await n1.exec(`hepto-agent admit n2 --identity ${id2}`);
        assert.equal(admit.code, 0, admit.stderr + admit.stdout);
        assert.match(admit.stdout, /^admitted: n2 identity /m);
        assert.match(admit.stdout, /^1 of 1 admission handed to the agent, which spreads them to the cluster$/m);
        const alive = async (c: SystemdContainer): Promise<boolean> => {
          const doc = await statusJson(c);
          const names = doc.members.filter((m) => m.state === 'alive').map((m) => m.name).sort();
          return names.join(',') === 'n1,n2';
        };
        await waitFor('both agents to list n1 and n2 alive', async () => (await alive(n1)) && (await alive(n2)), 60_000);
        // n2 learnt its admission (on its next join try) and keeps it.
        await waitFor('n2 to show its admission', async () => selfMember(await statusJson(n2)).admitted_at !== null, 30_000);
        await n2.ok('test -s /srv/n2/admission.json');
        assert.notEqual((await statusJson(n1)).members.find((m) => m.name === 'n2')?.admitted_at ?? null, null, 'n1 does not show n2 admitted');
        const roles = Object.fromEntries((await statusJson(n2)).members.map((m) => [m.name, m.role]));
        assert.deepEqual(roles, { n1: 'master', n2: 'node' });
        let line2 = '';
        await waitFor('n2 STATUS line', async () => /^mesh 2\/2 alive · wesher running · k3s running$/.test((line2 = await statusText(n2))), 90_000).catch((e: Error) =>
          assert.fail(`${e.message}; the line: ${line2}`),
        );
        const conf = JSON.parse(await n2.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
        assert.equal(conf.wesher_download, wesher.url, 'the join line did not carry the wesher mirror');
        assert.equal(conf.wesher_sha256, wesher.sha256, 'the join line did not carry the wesher pin');
        assert.equal(conf.admin_pub, JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')).admin_pub, 'the join line did not carry admin_pub');
        assert.equal((await n2.exec('test -e /etc/hepto/admin.key')).code, 1, 'only the first machine holds the admin key');
      });

      it('no key on any command line while n2 joined and started both containers (argv sampled all along)', async () => {
        assert.ok(sampler2, 'the sampler did not start');
        await n2.ok(CANARY_SCRIPT);
        const s = await sampler2.stop();
        sampler2 = undefined;
        assertNoKeyInArgv('n2 (join)', s, [...keys, Buffer.from(keys[0], 'utf8').toString('base64')], [
          /-e .*const \[file, out, changes\] = process\.argv/,
          /dist\/agent\/cli\.js config validate --config \/tmp\/hepto-install\.\S+\/hepto\.json$/,
          /^sha256sum \/tmp\/hepto-install\.\S+\/agent\.tar\.gz$/,
          /\bagent --server https:\/\/\S+ --node-name n2\b/,
        ]);
      });

      it('n2 built its own wesher image from the mirror in the join line and pulled k3s from the registry', async () => {
        await assertImagesFromSources(n2, h2);
      });

      it("each machine's wgoverlay is in its own namespace with its own overlay IP at MTU 1320, also after wesher met its peer", async () => {
        const ips = Object.fromEntries((await statusJson(n2)).members.map((m) => [m.name, m.overlay_ip]));
        assert.ok(ips.n1 && ips.n2 && ips.n1 !== ips.n2, `overlay IPs: ${JSON.stringify(ips)}`);
        // n1's wesher has set its interface up for n2 (a route to n2's overlay IP, and its own MTU 1420)...
        // (Only n1's: n2's wesher hears of n1 as it joins, often before the agent has made n2's link, and
        // then tries to make a WireGuard link itself, which this kernel cannot; on a real machine it can.)
        await waitFor(
          `wesher in ${h1.ns} to route ${ips.n2} over wgoverlay`,
          async () => (await run('ip', ['-n', h1.ns, 'route', 'show', 'dev', 'wgoverlay'])).stdout.split('\n').some((l) => l.split(' ')[0] === ips.n2),
          60_000,
        );
        // ...and the agent has set the MTU back.
        await assertOverlayLink(n1, h1, 'n1');
        await assertOverlayLink(n2, h2, 'n2');
      });

      it('hepto-uninstall.sh --purge also removes the containers and the node data', async () => {
        await n2.ok('test -d /srv/n2');
        const r = await n2.exec('hepto-uninstall.sh --purge');
        assert.equal(r.code, 0, r.stderr);
        await assertNothingInstalled(n2);
        assert.equal((await n2.ok("podman ps -a --format '{{.Names}}'")).trim(), '');
        assert.notEqual((await n2.exec('test -e /srv/n2')).code, 0, '/srv/n2 is still there');
        // Given time to stop, wesher left the mesh and deleted its interface (on a host-mode machine's own network).
        assert.equal(await overlayLink(h2), null, 'wgoverlay is still in n2\'s namespace');
      });
    });

    describe('uninstall', () => {
      it('hepto-uninstall.sh leaves no unit, binary or config, and keeps containers and data', async () => {
        const r = await n1.exec('hepto-uninstall.sh');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /containers and node data were kept/);
        await assertNothingInstalled(n1);
        assert.match(r.stderr, /kept the cluster's admin key \/etc\/hepto\/admin\.key/);
        assert.equal((await n1.ok('stat -c %a /etc/hepto/admin.key')).trim(), '600', 'the admin key is kept, 0600');
        assert.equal((await n1.ok("podman ps -a --format '{{.Names}}' | sort")).trim(), 'hepto-n1-k3s\nhepto-n1-wesher');
        await n1.ok('test -d /srv/n1');
        assert.notEqual(await overlayLink(h1), null, 'wgoverlay went, though wesher still runs');
      });
    });
  });

  describe('a fresh Debian 12 without Podman or Node', () => {
    let fresh: SystemdContainer;
    let h3: NetnsHost;
    const port = 7953;

    before(async () => {
      h3 = topo.hosts[2];
      fresh = await boot(baseImage, 'fresh', h3);
    });

    it('the installer installs Podman and Node with apt; HEPTO_SKIP_START=1 enables without starting', async function () {
      this.timeout(10 * 60_000);
      assert.notEqual((await fresh.exec('command -v podman || command -v node')).code, 0, 'the base image already has podman or node');
      const r = await fresh.exec(install({ ...agentEnv(), HEPTO_NODE: 'fresh', HEPTO_GOSSIP_PORT: String(port), HEPTO_SKIP_START: '1', ...wesherEnv }), {
        timeoutMs: 9 * 60_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /installing podman nodejs with apt \(debian\)/);
      assert.ok(aptProxy.requests.some((l) => / 200$/.test(l)), `apt fetched nothing through the test proxy: ${aptProxy.requests.slice(-5).join('; ')}`);
      // Not started, so no agent to ask: the installer names this machine's IPv6 address first, as the agent would.
      const m = parseJoinLine(r.stdout.trim());
      assert.equal(unquote(m.anchors), `[${h3.v6}]:${port}`);
      assert.equal(m.agentSha, release.sha256);
      assert.equal(m.wesherDownload, wesher.url);
      assert.match(await fresh.ok('node --version'), /^v(1[89]|[2-9]\d)\./);
      await fresh.ok('podman --version');
      assert.equal((await fresh.ok('systemctl is-active podman.socket')).trim(), 'active');
      assert.equal((await fresh.ok(`systemctl is-enabled ${SERVICE}`)).trim(), 'enabled');
      assert.equal((await fresh.exec(`systemctl is-active ${SERVICE}`)).stdout.trim(), 'inactive');
      // Not started, so nothing admitted yet: the last line says what to run once it runs.
      assert.equal(r.stderr.trimEnd().split('\n').pop(), `[WARN]  once ${SERVICE} runs, admit this machine, or the cluster refuses it: hepto-agent admit fresh --admin-key /etc/hepto/admin.key`);
    });

    it('the agent then runs on the Podman and Node it installed, with images it built and pulled itself', async () => {
      await fresh.ok(`systemctl start ${SERVICE}`, { timeoutMs: 90_000 });
      // As the installer said: it holds the admin key, so it admits its own node.
      const before = await statusJson(fresh);
      assert.equal(selfMember(before).admitted_at, null);
      assert.ok(before.problems.some((p) => p.startsWith('this node has no admission')), before.problems.join('\n'));
      const admit = await fresh.exec('hepto-agent admit fresh --admin-key /etc/hepto/admin.key');
      assert.equal(admit.code, 0, admit.stderr + admit.stdout);
      await waitFor('both containers running', async () => /^mesh 1\/1 alive · wesher running · k3s running$/.test(await statusText(fresh)), 120_000);
      assert.notEqual(selfMember(await statusJson(fresh)).admitted_at, null);
      await assertImagesFromSources(fresh, h3);
      await assertOverlayLink(fresh, h3, 'fresh');
      const r = await fresh.exec('hepto-uninstall.sh --purge');
      assert.equal(r.code, 0, r.stderr);
      await assertNothingInstalled(fresh);
      assert.equal(await overlayLink(h3), null, 'wgoverlay is still in the namespace after --purge');
    });

    describe('bad input: one clear line, nothing left half installed', () => {
      const base = (): Record<string, string> => ({ ...agentEnv(), HEPTO_NODE: 'fresh', HEPTO_GOSSIP_PORT: String(port) });

      afterEach(async () => assertNothingInstalled(fresh));

      it('a wrong checksum', async () => {
        const r = await fresh.exec(install({ ...base(), HEPTO_AGENT_SHA256: '0'.repeat(64) }));
        const url = agentUrl().replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&');
        assertOneError(r, new RegExp(`^\\[ERROR\\] checksum mismatch for ${url}: expected 0{64}, got [0-9a-f]{64}`));
      });

      it('a plain http HEPTO_AGENT_URL without HEPTO_AGENT_SHA256: refused before anything is downloaded', async () => {
        const { HEPTO_AGENT_SHA256: _pin, ...unpinned } = base();
        const asked = server.requests.length;
        const r = await fresh.exec(install(unpinned));
        const url = agentUrl().replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&');
        assertOneError(r, new RegExp(`^\\[ERROR\\] HEPTO_AGENT_URL is plain http \\(${url}\\), so its \\.sha256 from the same server proves nothing: set HEPTO_AGENT_SHA256 .*, or use an https URL; nothing was installed$`));
        assert.deepEqual(server.requests.slice(asked), ['install.sh'], 'the installer fetched something');
      });

      it('https without a pin still works: the tarball is checked against its .sha256 from there (dry run)', async () => {
        await fresh.writeFile('/root/test-ca.pem', caBundle);
        const asked = tlsServer.requests.length;
        const url = tlsServer.url(release.tarball);
        const r = await fresh.exec(install({ HEPTO_AGENT_URL: url, HEPTO_NODE: 'fresh', HEPTO_DRY_RUN: '1', CURL_CA_BUNDLE: '/root/test-ca.pem' }));
        await fresh.exec('rm -f /root/test-ca.pem');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`checksum verified \\(${release.sha256}\\)`));
        assert.deepEqual(tlsServer.requests.slice(asked), [release.tarball, `${release.tarball}.sha256`]);
      });

      it('https redirected to plain http is refused', async () => {
        await fresh.writeFile('/root/test-ca.pem', caBundle);
        tlsServer.redirects.set('moved.tar.gz', agentUrl());
        try {
          const r = await fresh.exec(install({ HEPTO_AGENT_URL: tlsServer.url('moved.tar.gz'), HEPTO_NODE: 'fresh', HEPTO_DRY_RUN: '1', CURL_CA_BUNDLE: '/root/test-ca.pem' }));
          assertOneError(r, /^\[ERROR\] cannot download https:\S+\/moved\.tar\.gz: curl: \(1\) Protocol "http" not supported/);
        } finally {
          tlsServer.redirects.delete('moved.tar.gz');
          await fresh.exec('rm -f /root/test-ca.pem');
        }
      });

      it('an unreachable URL', async () => {
        const closed = await freePort();
        const r = await fresh.exec(install({ ...base(), HEPTO_AGENT_URL: `http://127.0.0.1:${closed}/hepto-agent.tar.gz` }));
        assertOneError(r, new RegExp(`^\\[ERROR\\] cannot download http://127\\.0\\.0\\.1:${closed}/hepto-agent\\.tar\\.gz: .*(Failed to connect|Couldn't connect)`));
      });

      it('a bad key length, named by the agent, the key never echoed', async () => {
        const r = await fresh.exec(
          install({ ...base(), HEPTO_ANCHORS: '127.0.0.1:1', HEPTO_MASTER: 'n1', HEPTO_OVERLAY_KEY: 'tooShort123', HEPTO_CLUSTER_KEY: 'A'.repeat(32) }),
        );
        const line = assertOneError(r, /^\[ERROR\] invalid settings: .*overlay_key/);
        assert.ok(!r.stderr.includes('tooShort123') && !r.stderr.includes('A'.repeat(32)), line);
      });

      it('not root', async () => {
        const r = await fresh.exec(install(base()), { user: 'nobody' });
        assertOneError(r, /^\[ERROR\] the installer needs root/);
      });

      it('a plain http HEPTO_WESHER_DOWNLOAD without HEPTO_WESHER_SHA256, named by the agent', async () => {
        const r = await fresh.exec(install({ ...base(), HEPTO_WESHER_DOWNLOAD: wesher.url }), { timeoutMs: 120_000 });
        assertOneError(r, /^\[ERROR\] invalid settings: .*wesher_download: .* is plain http.*wesher_sha256.*; nothing was installed$/);
      });

      it('anchors without keys', async () => {
        const r = await fresh.exec(install({ ...base(), HEPTO_ANCHORS: '127.0.0.1:1' }));
        assertOneError(r, /^\[ERROR\] joining through HEPTO_ANCHORS needs HEPTO_OVERLAY_KEY and HEPTO_CLUSTER_KEY/);
      });

      it('HEPTO_DRY_RUN=1 says what it would do and changes nothing; unknown variables are named', async () => {
        const r = await fresh.exec(install({ ...base(), HEPTO_DRY_RUN: '1', HEPTO_ANCHOR: 'typo' }));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /\[WARN\]  unknown variable HEPTO_ANCHOR is ignored/);
        assert.match(r.stderr, /would generate the overlay key and the cluster key/);
        assert.match(r.stderr, /would create \/etc\/hepto\/hepto\.json/);
        assert.match(r.stderr, /would unpack agent .* into \/usr\/local\/lib\/hepto-agent\//);
        assert.equal(r.stdout, '', 'a dry run prints no join line');
      });

      it('an agent that cannot start: one line with its own error, and the new cluster\'s join line is still printed', async () => {
        // ProtectSystem=full makes /usr read-only for the service, so node data there cannot be written.
        const r = await fresh.exec(install({ ...base(), HEPTO_STORAGE_BASE: '/usr/lib/hepto-data' }), { timeoutMs: 180_000 });
        assertOneError({ ...r, stdout: '' }, /^\[ERROR\] hepto-agent exited while starting: hepto-agent: .*\/usr\/lib\/hepto-data.* \(journalctl -u hepto-agent\)$/);
        parseJoinLine(r.stdout.trim());
        const u = await fresh.exec('hepto-uninstall.sh --purge');
        assert.equal(u.code, 0, u.stderr);
      });

      it('from a checkout, ./install.sh finds the tarball npm run package wrote next to it', async () => {
        await fresh.ok('mkdir -p /root/hepto/dist/release');
        for (const f of [path.join(ROOT, 'install.sh'), path.join(ROOT, 'package.json')]) {
          await check('podman', ['cp', f, `${fresh.name}:/root/hepto/`]);
        }
        await check('podman', ['cp', `${release.dir}/.`, `${fresh.name}:/root/hepto/dist/release/`]);
        await fresh.ok(`sed -i 's/"version": *"[^"]*"/"version": "${release.version}"/' /root/hepto/package.json`);
        const r = await fresh.exec('cd /root/hepto && HEPTO_DRY_RUN=1 HEPTO_NODE=fresh ./install.sh');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`downloading the agent from /root/hepto/dist/release/${release.tarball.replace(/\./g, '\\.')}`));
        assert.match(r.stderr, new RegExp(`checksum verified \\(${release.sha256}\\)`));
        await fresh.ok('rm -rf /root/hepto');
      });
    });
  });
});
