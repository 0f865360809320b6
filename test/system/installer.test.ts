/**
 * The installer end to end, as a new user runs it: `curl -sfL .../install.sh |
 * HEPTO_... sh -` inside a Debian 12 container booted with systemd as PID 1,
 * with a nested Podman running the stand-in wesher and k3s images. Real
 * systemd, real Podman, real curl pipe; install.sh and the tarball come from
 * a file server on 127.0.0.1. Every container is removed afterwards.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { DEFAULT_IMAGES } from '../../shared/config/images';
import {
  ROOT,
  buildRelease,
  check,
  ensureImage,
  envWords,
  FileServer,
  freePort,
  packageFrom,
  snapshotCheckout,
  removeStaleContainers,
  SystemdContainer,
  waitFor,
  type Release,
  type Result,
} from './harness';

const SERVICE = 'hepto-agent';
const INSTALLED = ['/usr/local/bin/hepto-agent', '/usr/local/lib/hepto-agent', '/etc/hepto', '/etc/systemd/system/hepto-agent.service', '/usr/local/bin/hepto-uninstall.sh'];
const JOIN_LINE = /^curl -sfL (\S+) \| HEPTO_AGENT_URL=(\S+) HEPTO_ANCHORS=(\S+) HEPTO_OVERLAY_KEY=([A-Za-z0-9]{32}) HEPTO_CLUSTER_KEY=([A-Za-z0-9]{32}) HEPTO_MASTER=(\S+) sh -$/;

interface StatusJson {
  node: string;
  members: Array<{ name: string; state: string; role: string }>;
  containers: Array<{ name: string; role: string; state: string }>;
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

/** Nothing of the installer's is left: no file, no unit known to systemd, no temp dir. */
async function assertNothingInstalled(c: SystemdContainer): Promise<void> {
  const left = await c.exec(`for p in ${INSTALLED.join(' ')} /tmp/hepto-install.* /usr/local/lib/.hepto*; do [ -e "$p" ] && echo "$p"; done; true`);
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
  let work: string;
  let release: Release;
  let server: FileServer;
  let standIns: string;
  let baseImage: string;
  let bakedImage: string;
  const tags = {
    'localhost/hepto-standin-wesher:test': DEFAULT_IMAGES.wesher,
    'localhost/hepto-standin-k3s:test': DEFAULT_IMAGES.k3s,
  };

  const boot = async (image: string, hostname: string): Promise<SystemdContainer> => {
    const c = await SystemdContainer.boot({ image, hostname, mounts: [[standIns, '/stand-ins']] });
    containers.push(c);
    return c;
  };
  const install = (env: Record<string, string>): string => `curl -sfL ${server.url('install.sh')} | ${envWords(env)} sh -`;
  const agentUrl = (): string => server.url(release.tarball);

  before(async function () {
    this.timeout(25 * 60_000);
    await removeStaleContainers();
    work = mkdtempSync(path.join(tmpdir(), 'hepto-systest-'));
    baseImage = await ensureImage('base');
    bakedImage = await ensureImage('baked');
    release = await buildRelease(path.join(work, 'release'));
    server = await FileServer.start(release.dir);
    standIns = path.join(work, 'stand-ins');
    await check('bash', [path.join(ROOT, 'test/fixtures/stand-in-images.sh'), 'save', standIns], { timeoutMs: 5 * 60_000 });
  });

  after(async function () {
    this.timeout(120_000);
    await Promise.all(containers.map((c) => c.remove()));
    await server?.close();
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
    let port1: number;
    let env1: Record<string, string>;
    let keys: string[];
    let installerLog: string;
    let joinLine: string;

    before(async () => {
      n1 = await boot(bakedImage, 'n1');
      await n1.loadStandIns('/stand-ins', tags);
      port1 = await freePort();
      env1 = { HEPTO_AGENT_URL: agentUrl(), HEPTO_NODE: 'n1', HEPTO_GOSSIP_PORT: String(port1), HEPTO_ADVERTISE: `127.0.0.1:${port1}` };
    });

    it('curl | sh generates both keys, starts the service, and prints the exact join line', async () => {
      const r = await n1.exec(install(env1), { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      installerLog = r.stderr;
      joinLine = r.stdout.trim();
      const m = JOIN_LINE.exec(joinLine);
      assert.ok(m, `no join line on stdout: ${r.stdout}`);
      assert.equal(m[1], server.url('install.sh'));
      assert.equal(m[2], agentUrl());
      assert.equal(m[3], `127.0.0.1:${port1}`);
      assert.equal(m[6], 'n1');
      keys = [m[4], m[5]];
      assert.notEqual(keys[0], keys[1]);
      assert.equal((await n1.ok(`systemctl is-active ${SERVICE}`)).trim(), 'active');
      assert.equal((await n1.ok('systemctl is-enabled podman.socket')).trim(), 'enabled');
      const conf = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      assert.equal(conf.overlay_key, keys[0]);
      assert.equal(conf.cluster_key, keys[1]);
      assert.equal(conf.master, 'n1');
      assert.equal(conf.gossip_port, port1);
      assert.equal((await n1.ok('stat -c %a /etc/hepto/hepto.json /etc/hepto')).trim(), '600\n700');
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
      const r = await n1.exec(install({ ...env1, HEPTO_GW: '192.0.2.254', HEPTO_DRY_RUN: '1' }), { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /would replace \/etc\/hepto\/hepto\.json/);
      assert.match(r.stderr, /would \(re\)start hepto-agent/);
      assert.match(r.stderr, /dry run done: would change \/etc\/hepto\/hepto\.json$/m);
      assert.equal(await snapshot(n1), before);
    });

    it('changing one variable replaces only the config and restarts the service once', async () => {
      const confBefore = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      const pidBefore = (await n1.ok(`systemctl show -p MainPID --value ${SERVICE}`)).trim();
      const others = await n1.ok('stat -c "%n %i %Y" /etc/systemd/system/hepto-agent.service /usr/local/bin/hepto-agent /usr/local/lib/hepto-agent/*');
      const r = await n1.exec(install({ ...env1, HEPTO_IP: '192.0.2.10/24' }), { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /done: changed \/etc\/hepto\/hepto\.json$/m);
      const confAfter = JSON.parse(await n1.ok('cat /etc/hepto/hepto.json')) as Record<string, unknown>;
      assert.deepEqual(confAfter, { ...confBefore, ip: ['192.0.2.10/24'] });
      assert.equal(await n1.ok('stat -c "%n %i %Y" /etc/systemd/system/hepto-agent.service /usr/local/bin/hepto-agent /usr/local/lib/hepto-agent/*'), others);
      const pidAfter = (await n1.ok(`systemctl show -p MainPID --value ${SERVICE}`)).trim();
      assert.notEqual(pidAfter, pidBefore);
      assert.equal((await n1.ok(`systemctl show -p NRestarts --value ${SERVICE}`)).trim(), '0', 'the agent crashed and was restarted by systemd');
      await waitFor('the agent to show both containers again', async () => /wesher running · k3s running/.test(await statusText(n1)), 60_000);
    });

    it('an upgrade (a new tarball) replaces the agent in place, keeps the config, restarts once', async function () {
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
      const r = await n1.exec(install({ ...env1, HEPTO_IP: '192.0.2.10/24', HEPTO_AGENT_URL: server.url(name) }), { timeoutMs: 180_000 });
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

      before(async () => {
        n2 = await boot(bakedImage, 'n2');
        await n2.loadStandIns('/stand-ins', tags);
      });

      it('the printed line, run verbatim, joins; both agents list two alive members', async () => {
        const port2 = await freePort();
        const r = await n2.exec(`export HEPTO_NODE=n2 HEPTO_GOSSIP_PORT=${port2} HEPTO_ADVERTISE=127.0.0.1:${port2}; ${joinLine}`, { timeoutMs: 180_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.equal(r.stdout, '', 'a joining machine prints no join line');
        for (const k of keys) assert.ok(!r.stderr.includes(k), 'a key is in the installer log');
        const alive = async (c: SystemdContainer): Promise<boolean> => {
          const doc = await statusJson(c);
          const names = doc.members.filter((m) => m.state === 'alive').map((m) => m.name).sort();
          return names.join(',') === 'n1,n2';
        };
        await waitFor('both agents to list n1 and n2 alive', async () => (await alive(n1)) && (await alive(n2)), 60_000);
        const roles = Object.fromEntries((await statusJson(n2)).members.map((m) => [m.name, m.role]));
        assert.deepEqual(roles, { n1: 'master', n2: 'node' });
        await waitFor('n2 STATUS line', async () => /^mesh 2\/2 alive · wesher running · k3s running$/.test(await statusText(n2)), 90_000);
      });

      it('hepto-uninstall.sh --purge also removes the containers and the node data', async () => {
        await n2.ok('test -d /srv/n2');
        const r = await n2.exec('hepto-uninstall.sh --purge');
        assert.equal(r.code, 0, r.stderr);
        await assertNothingInstalled(n2);
        assert.equal((await n2.ok("podman ps -a --format '{{.Names}}'")).trim(), '');
        assert.notEqual((await n2.exec('test -e /srv/n2')).code, 0, '/srv/n2 is still there');
      });
    });

    describe('uninstall', () => {
      it('hepto-uninstall.sh leaves no unit, binary or config, and keeps containers and data', async () => {
        const r = await n1.exec('hepto-uninstall.sh');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /containers and node data were kept/);
        await assertNothingInstalled(n1);
        assert.equal((await n1.ok("podman ps -a --format '{{.Names}}' | sort")).trim(), 'hepto-n1-k3s\nhepto-n1-wesher');
        await n1.ok('test -d /srv/n1');
      });
    });
  });

  describe('a fresh Debian 12 without Podman or Node', () => {
    let fresh: SystemdContainer;
    let port: number;

    before(async () => {
      fresh = await boot(baseImage, 'fresh');
      port = await freePort();
    });

    it('the installer installs Podman and Node with apt; HEPTO_SKIP_START=1 enables without starting', async function () {
      this.timeout(10 * 60_000);
      assert.notEqual((await fresh.exec('command -v podman || command -v node')).code, 0, 'the base image already has podman or node');
      const r = await fresh.exec(
        install({ HEPTO_AGENT_URL: agentUrl(), HEPTO_NODE: 'fresh', HEPTO_GOSSIP_PORT: String(port), HEPTO_ADVERTISE: `127.0.0.1:${port}`, HEPTO_SKIP_START: '1' }),
        { timeoutMs: 9 * 60_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /installing podman nodejs with apt \(debian\)/);
      assert.match(JOIN_LINE.exec(r.stdout.trim())?.[3] ?? '', new RegExp(`^127\\.0\\.0\\.1:${port}$`));
      assert.match(await fresh.ok('node --version'), /^v(1[89]|[2-9]\d)\./);
      await fresh.ok('podman --version');
      assert.equal((await fresh.ok('systemctl is-active podman.socket')).trim(), 'active');
      assert.equal((await fresh.ok(`systemctl is-enabled ${SERVICE}`)).trim(), 'enabled');
      assert.equal((await fresh.exec(`systemctl is-active ${SERVICE}`)).stdout.trim(), 'inactive');
    });

    it('the agent then runs on the Podman and Node it installed', async () => {
      await fresh.loadStandIns('/stand-ins', tags);
      await fresh.ok(`systemctl start ${SERVICE}`, { timeoutMs: 90_000 });
      await waitFor('both containers running', async () => /^mesh 1\/1 alive · wesher running · k3s running$/.test(await statusText(fresh)), 120_000);
      const r = await fresh.exec('hepto-uninstall.sh --purge');
      assert.equal(r.code, 0, r.stderr);
      await assertNothingInstalled(fresh);
    });

    describe('bad input: one clear line, nothing left half installed', () => {
      const base = (): Record<string, string> => ({ HEPTO_AGENT_URL: agentUrl(), HEPTO_NODE: 'fresh', HEPTO_GOSSIP_PORT: String(port) });

      afterEach(async () => assertNothingInstalled(fresh));

      it('a wrong checksum', async () => {
        const r = await fresh.exec(install({ ...base(), HEPTO_AGENT_SHA256: '0'.repeat(64) }));
        assertOneError(r, /^\[ERROR\] checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/hepto-agent-.*: expected 0{64}, got [0-9a-f]{64}/);
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
        const r = await fresh.exec(install({ ...base(), HEPTO_ADVERTISE: `127.0.0.1:${port}`, HEPTO_STORAGE_BASE: '/usr/lib/hepto-data' }), { timeoutMs: 180_000 });
        assertOneError({ ...r, stdout: '' }, /^\[ERROR\] hepto-agent exited while starting: hepto-agent: .*\/usr\/lib\/hepto-data.* \(journalctl -u hepto-agent\)$/);
        assert.ok(JOIN_LINE.test(r.stdout.trim()), `no join line: ${r.stdout}`);
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
