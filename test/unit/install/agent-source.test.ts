/**
 * Where the installer takes the agent from, and what it tells the next
 * machine: install.sh's own functions (the script without its last line,
 * `main "$@"`, sourced into sh), run alone.
 *
 * - check_agent_source refuses a plain http HEPTO_AGENT_URL without
 *   HEPTO_AGENT_SHA256 (its .sha256 from the same server proves nothing),
 *   before anything is downloaded; https, a pin, a local path pass.
 * - print_join_line pins the tarball installed here (HEPTO_AGENT_SHA256 next
 *   to HEPTO_AGENT_URL), never puts `sudo` before the keys, and warns when the
 *   line fetches install.sh over plain http.
 *
 * The whole installer runs in test/system/installer.test.ts.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../../../..');
const SHA = '0123456789abcdef'.repeat(4);
const OVERLAY = 'O'.repeat(16) + 'verlay0123456789';
const CLUSTER = 'C'.repeat(16) + 'luster0123456789';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('install/agent source and join line', () => {
  let dir: string;
  let lib: string;
  let bin: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hepto-src-'));
    const lines = readFileSync(path.join(ROOT, 'install.sh'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.pop(), 'main "$@"');
    lib = path.join(dir, 'install-lib.sh');
    writeFileSync(lib, lines.join('\n') + '\n');
    // Stand-ins for what print_join_line asks the machine: no agent running, two addresses.
    bin = path.join(dir, 'bin');
    mkdirSync(bin);
    const stub = (name: string, body: string): void => {
      writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(path.join(bin, name), 0o755);
    };
    stub('systemctl', 'exit 3');
    stub('hostname', 'echo "192.0.2.7 2001:db8::7 "');
    stub('uname', 'echo x86_64');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `script` in sh after sourcing install.sh's functions, with only `env` (and PATH) set. */
  const sh = (script: string, env: Record<string, string>): Run => {
    const r = spawnSync('/bin/sh', ['-c', `. "$0"; ${script}`, lib], {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH}`, ...env },
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  describe('check_agent_source', () => {
    it('refuses a plain http HEPTO_AGENT_URL without HEPTO_AGENT_SHA256: one [ERROR] line naming both and what to do', () => {
      const r = sh('check_agent_source; echo reached', { HEPTO_AGENT_URL: 'http://releases.example/hepto-agent-0.1.0.tar.gz' });
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '', 'it went on after the refusal');
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0],
        /^\[ERROR\] HEPTO_AGENT_URL is plain http \(http:\/\/releases\.example\/hepto-agent-0\.1\.0\.tar\.gz\), .*set HEPTO_AGENT_SHA256 to the tarball's sha256 .*or use an https URL; nothing was installed$/,
      );
    });

    it('an empty HEPTO_AGENT_SHA256 is no pin', () => {
      const r = sh('check_agent_source', { HEPTO_AGENT_URL: 'http://releases.example/a.tar.gz', HEPTO_AGENT_SHA256: '' });
      assert.equal(r.code, 1, r.stderr);
    });

    for (const [what, env] of [
      ['plain http with a pin', { HEPTO_AGENT_URL: 'http://releases.example/a.tar.gz', HEPTO_AGENT_SHA256: SHA }],
      ['https without a pin (its .sha256 is fetched over https)', { HEPTO_AGENT_URL: 'https://releases.example/a.tar.gz' }],
      ['a local path', { HEPTO_AGENT_URL: '/root/hepto-agent-0.1.0.tar.gz' }],
      ['no HEPTO_AGENT_URL (a checkout finds its own tarball)', {}],
      ['a plain http HEPTO_INSTALL_URL (never fetched by the installer)', { HEPTO_AGENT_URL: 'https://releases.example/a.tar.gz', HEPTO_INSTALL_URL: 'http://x.example/install.sh' }],
    ] as Array<[string, Record<string, string>]>) {
      it(`lets through ${what}`, () => {
        const r = sh('check_agent_source && echo ok', env);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'ok\n');
        assert.equal(r.stderr, '');
      });
    }

    it('runs in main before the download, right after the cluster inputs are checked', () => {
      const text = readFileSync(lib, 'utf8');
      // The installer's main, not the uninstaller's (a here-document above it).
      const main = /^main\(\) \{\n([\s\S]*?)\n\}$/m.exec(text.slice(text.lastIndexOf('\nmain() {')))?.[1] ?? '';
      const order = main.split('\n').map((l) => l.trim());
      const at = (f: string): number => order.indexOf(f);
      assert.ok(at('check_agent_source') > at('check_cluster_inputs') && at('check_cluster_inputs') >= 0, main);
      assert.ok(at('check_agent_source') < at('fetch_agent'), main);
    });
  });

  describe('print_join_line', () => {
    const joinEnv = (agentUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
      HEPTO_AGENT_URL: agentUrl,
      AGENT_SHA256: SHA,
      HEPTO_OVERLAY_KEY: OVERLAY,
      HEPTO_CLUSTER_KEY: CLUSTER,
      MASTER_NAME: 'n1',
      NODE_NAME: 'n1',
      ...extra,
    });
    const keyed = `HEPTO_ANCHORS='[2001:db8::7]:7947' HEPTO_OVERLAY_KEY=${OVERLAY} HEPTO_CLUSTER_KEY=${CLUSTER} HEPTO_MASTER=n1`;

    it('https: the line pins the installed tarball next to HEPTO_AGENT_URL', () => {
      const url = 'https://releases.example/v1/hepto-agent-0.1.0.tar.gz';
      const r = sh('print_join_line', joinEnv(url));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `curl -sfL https://releases.example/v1/install.sh | HEPTO_AGENT_URL=${url} HEPTO_AGENT_SHA256=${SHA} ${keyed} sh -\n`);
      assert.doesNotMatch(r.stderr, /\[WARN\]/);
      assert.match(r.stderr, /from a root shell \(sudo -i; not 'sudo HEPTO_\.\.\.=\.\.\.', which shows the keys to every user\)/);
    });

    it('plain http: the same pin, and a warning that install.sh itself comes over plain http', () => {
      const url = 'http://192.0.2.254:8080/hepto-agent-0.1.0.tar.gz';
      const r = sh('print_join_line', joinEnv(url));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `curl -sfL http://192.0.2.254:8080/install.sh | HEPTO_AGENT_URL=${url} HEPTO_AGENT_SHA256=${SHA} ${keyed} sh -\n`);
      const warns = r.stderr.split('\n').filter((l) => l.startsWith('[WARN]'));
      assert.equal(warns.length, 1, r.stderr);
      assert.match(warns[0], /fetches install\.sh over plain http \(http:\/\/192\.0\.2\.254:8080\/install\.sh\).*serve install\.sh over https and set HEPTO_INSTALL_URL$/);
    });

    it('a local tarball with HEPTO_INSTALL_URL: the tarball to serve is pinned too', () => {
      const r = sh('print_join_line', joinEnv('/root/hepto-agent-0.1.0.tar.gz', { HEPTO_INSTALL_URL: 'https://x.example/install.sh' }));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `curl -sfL https://x.example/install.sh | HEPTO_AGENT_URL=<url-of-the-tarball> HEPTO_AGENT_SHA256=${SHA} ${keyed} sh -\n`);
    });

    it('from a checkout: no sudo before the keys (its command line is readable by every user)', () => {
      const r = sh('print_join_line', joinEnv('/root/hepto/dist/release/hepto-agent-0.1.0.tar.gz'));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${keyed} ./install.sh\n`);
    });

    it('never shows a key on stderr', () => {
      for (const url of ['https://r.example/a.tar.gz', 'http://r.example/a.tar.gz', '/root/a.tar.gz']) {
        const r = sh('print_join_line', joinEnv(url));
        assert.ok(!r.stderr.includes(OVERLAY) && !r.stderr.includes(CLUSTER), `a key on stderr for ${url}`);
      }
    });
  });

  it('check_root says to use a root shell, not sudo with the variables', () => {
    // Run as nobody when this test runs as root (as test/run.sh does).
    chmodSync(dir, 0o755);
    chmodSync(lib, 0o644);
    const asRoot = process.getuid?.() === 0;
    const r = spawnSync('/bin/sh', ['-c', '. "$0"; check_root', lib], { encoding: 'utf8', env: { PATH: process.env.PATH }, ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^\[ERROR\] the installer needs root: run it again from a root shell \(sudo -i\), with the same HEPTO_\* variables \(not as 'sudo HEPTO_\.\.\.=\.\.\.': /);
  });
});
