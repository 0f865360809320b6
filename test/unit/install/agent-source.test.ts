/**
 * Where the installer takes the agent from, and what it tells the next
 * machine: install.sh's own functions (the script without its last line,
 * `main "$@"`, sourced into sh), run alone.
 *
 * - check_agent_source refuses a plain http HEPTO_AGENT_URL without
 *   HEPTO_AGENT_SHA256 (its .sha256 from the same server proves nothing),
 *   before anything is downloaded; https, a pin, a local path pass.
 * - write_join_env writes /etc/hepto/join.env (0644), what `hepto-agent
 *   invite` puts in its line besides the invitation: the tarball installed
 *   here with its pin (HEPTO_AGENT_SHA256 next to HEPTO_AGENT_URL), where
 *   install.sh is served, a wesher mirror; KEY='value' lines the agent's own
 *   parser (parseJoinEnv) reads back as written; never a key; and it leaves
 *   the file alone when nothing changed.
 *
 * The whole installer runs in test/system/installer.test.ts.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'fs';
import * as path from 'path';
import { installSandbox } from './sandbox';
import { parseJoinEnv } from '../../../agent/commands/invite';

const SHA = '0123456789abcdef'.repeat(4);
const OVERLAY = 'O'.repeat(16) + 'verlay0123456789';
const CLUSTER = 'C'.repeat(16) + 'luster0123456789';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('install/agent source and join.env', () => {
  let dir: string;
  let lib: string;
  let bin: string;
  let remove: () => void;

  before(() => {
    const box = installSandbox('hepto-src-');
    ({ dir, lib, bin } = box);
    remove = box.remove;
    // Stand-ins for what the functions ask the machine: no agent running, two addresses.
    const stub = (name: string, body: string): void => box.stub(name, `#!/bin/sh\n${body}\n`);
    stub('systemctl', 'exit 3');
    stub('hostname', 'echo "192.0.2.7 2001:db8::7 "');
    stub('uname', 'echo x86_64');
  });
  after(() => remove());

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
      [
        'a plain http HEPTO_INSTALL_URL (never fetched by the installer)',
        { HEPTO_AGENT_URL: 'https://releases.example/a.tar.gz', HEPTO_INSTALL_URL: 'http://x.example/install.sh' },
      ],
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

  describe('write_join_env', () => {
    const MIRROR = "http://192.0.2.254:8080/wesher's mirror";
    /** write_join_env into a fresh directory: the file's text, its mode and what was said. */
    const joinEnv = (agentUrl: string, extra: Record<string, string> = {}, before?: string): Run & { text: string; mode: number; file: string } => {
      const etc = mkdtempSync(path.join(dir, 'etc-'));
      const file = path.join(etc, 'join.env');
      if (before !== undefined) writeFileSync(file, before, { mode: 0o644 });
      const tmp = path.join(etc, 'tmp');
      mkdirSync(tmp);
      const r = sh(`umask 077; HEPTO_JOIN_ENV_FILE=${file}; TMP_DIR=${tmp}; write_join_env`, {
        HEPTO_AGENT_URL: agentUrl,
        AGENT_SHA256: SHA,
        HEPTO_OVERLAY_KEY: OVERLAY,
        HEPTO_CLUSTER_KEY: CLUSTER,
        ...extra,
      });
      let text = '';
      let mode = 0;
      try {
        text = readFileSync(file, 'utf8');
        mode = statSync(file).mode & 0o777;
      } catch {
        text = '';
      }
      return { ...r, text, mode, file };
    };
    const values = (text: string): Record<string, string> => Object.fromEntries(parseJoinEnv(text));
    const body = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

    it('https: the tarball installed here, pinned, and install.sh next to it; 0644, every value quoted as the agent reads it', () => {
      const url = 'https://releases.example/v1/hepto-agent-0.1.0.tar.gz';
      const r = joinEnv(url);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.mode, 0o644);
      assert.deepEqual(body(r.text), [`HEPTO_INSTALL_URL='https://releases.example/v1/install.sh'`, `HEPTO_AGENT_URL='${url}'`, `HEPTO_AGENT_SHA256='${SHA}'`]);
      assert.deepEqual(values(r.text), { HEPTO_INSTALL_URL: 'https://releases.example/v1/install.sh', HEPTO_AGENT_URL: url, HEPTO_AGENT_SHA256: SHA });
      assert.match(r.stderr, /^\[INFO\] {2}wrote \S+\/join\.env \(for hepto-agent invite/);
    });

    it('a wesher mirror and its pin go in too, a quote in a value survives the round trip', () => {
      const r = joinEnv('http://192.0.2.254:8080/hepto-agent-0.1.0.tar.gz', { CONF_WESHER_DOWNLOAD: MIRROR, CONF_WESHER_SHA256: 'ab'.repeat(32) });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(values(r.text), {
        HEPTO_INSTALL_URL: 'http://192.0.2.254:8080/install.sh',
        HEPTO_AGENT_URL: 'http://192.0.2.254:8080/hepto-agent-0.1.0.tar.gz',
        HEPTO_AGENT_SHA256: SHA,
        HEPTO_WESHER_DOWNLOAD: MIRROR,
        HEPTO_WESHER_SHA256: 'ab'.repeat(32),
      });
    });

    it('HEPTO_INSTALL_URL is where install.sh is served; with a local tarball, the tarball to serve is a placeholder, pinned', () => {
      const r = joinEnv('/root/hepto-agent-0.1.0.tar.gz', { HEPTO_INSTALL_URL: 'https://x.example/install.sh' });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(values(r.text), { HEPTO_INSTALL_URL: 'https://x.example/install.sh', HEPTO_AGENT_URL: '<url-of-the-tarball>', HEPTO_AGENT_SHA256: SHA });
    });

    it('from a checkout: no URL and no pin (the line runs ./install.sh there, which builds its own tarball)', () => {
      const r = joinEnv('/root/hepto/dist/release/hepto-agent-0.1.0.tar.gz');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(body(r.text), []);
      assert.deepEqual(values(r.text), {});
    });

    it('never a key; the same content again leaves the file alone and says nothing; a dry run writes nothing', () => {
      const url = 'https://r.example/a.tar.gz';
      const first = joinEnv(url);
      assert.ok(!first.text.includes(OVERLAY) && !first.text.includes(CLUSTER), 'a key in join.env');
      const again = joinEnv(url, {}, first.text);
      assert.equal(again.stderr, '');
      assert.equal(again.text, first.text);
      const dry = joinEnv(url, { HEPTO_DRY_RUN: '1' });
      assert.equal(dry.text, '', 'a dry run wrote join.env');
      assert.match(dry.stderr, /would write \S+\/join\.env/);
    });

    it('main writes it after the files are installed, before the service starts', () => {
      const text = readFileSync(lib, 'utf8');
      const main = /^main\(\) \{\n([\s\S]*?)\n\}$/m.exec(text.slice(text.lastIndexOf('\nmain() {')))?.[1] ?? '';
      const order = main.split('\n').map((l) => l.trim());
      assert.equal(order.indexOf('write_join_env'), order.indexOf('install_files') + 1, main);
      assert.ok(order.indexOf('write_join_env') < order.indexOf('start_service'), main);
    });
  });

  it('check_root says to use a root shell, not sudo with the variables', () => {
    // Run as nobody when this test runs as root (as test/run.sh does).
    chmodSync(dir, 0o755);
    chmodSync(lib, 0o644);
    const asRoot = process.getuid?.() === 0;
    const r = spawnSync('/bin/sh', ['-c', '. "$0"; check_root', lib], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /^\[ERROR\] the installer needs root: run it again from a root shell \(sudo -i\), with the same HEPTO_\* variables \(not as 'sudo HEPTO_\.\.\.=\.\.\.': /,
    );
  });
});
