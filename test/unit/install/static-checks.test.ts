/**
 * Fast checks of the installer's shell scripts and the systemd unit, run in
 * the one test command: shellcheck and `systemd-analyze verify`. Both tools
 * are installed by test/run.sh; a missing one fails the suite, never skips it.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../../../..');
const UNIT = path.join(ROOT, 'systemd/hepto-agent.service');

function need(tool: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
  assert.equal(r.status, 0, `${tool} is not installed: test/run.sh installs it (apt-get install ${tool === 'systemd-analyze' ? 'systemd' : tool})`);
}

function shellcheck(args: string[]): { code: number; out: string } {
  const r = spawnSync('shellcheck', args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The uninstaller install.sh writes, cut out of its here-document. */
function uninstallerText(): string {
  const text = readFileSync(path.join(ROOT, 'install.sh'), 'utf8');
  const m = /write_uninstaller\(\) \{[^\n]*\n\s*cat >"\$1" <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(text);
  assert.ok(m, 'write_uninstaller here-document not found in install.sh');
  return m[1] + '\n';
}

/** Runs systemd-analyze verify on a unit inside a throwaway root holding the distro's units and a stand-in binary. */
function verifyUnit(unitText: string): { code: number; out: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'hepto-verify-'));
  try {
    mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
    mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
    writeFileSync(path.join(root, 'usr/local/bin/hepto-agent'), '#!/bin/sh\n', { mode: 0o755 });
    const distroUnits = existsSync('/usr/lib/systemd/system') ? '/usr/lib/systemd/system' : '/lib/systemd/system';
    cpSync(distroUnits, path.join(root, 'usr/lib/systemd/system'), { recursive: true, dereference: false });
    writeFileSync(path.join(root, 'etc/systemd/system/hepto-agent.service'), unitText);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, 'hepto-agent.service'], { encoding: 'utf8' });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe('install/static checks', () => {
  it('install.sh is POSIX sh and shellcheck clean', () => {
    need('shellcheck');
    const r = shellcheck(['-s', 'sh', path.join(ROOT, 'install.sh')]);
    assert.equal(r.code, 0, r.out);
  });

  it('the uninstaller it writes is shellcheck clean too', () => {
    need('shellcheck');
    const dir = mkdtempSync(path.join(tmpdir(), 'hepto-sc-'));
    try {
      const file = path.join(dir, 'hepto-uninstall.sh');
      writeFileSync(file, uninstallerText());
      const r = shellcheck(['-s', 'sh', file]);
      assert.equal(r.code, 0, r.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scripts/package.sh and the test image builder are shellcheck clean', () => {
    need('shellcheck');
    const r = shellcheck([path.join(ROOT, 'scripts/package.sh'), path.join(ROOT, 'test/system/images.sh')]);
    assert.equal(r.code, 0, r.out);
  });

  it('shellcheck does catch a mistake (the check can fail)', () => {
    need('shellcheck');
    const dir = mkdtempSync(path.join(tmpdir(), 'hepto-sc-'));
    try {
      const file = path.join(dir, 'bad.sh');
      writeFileSync(file, '#!/bin/sh\nlocal x=1\necho $x\n');
      assert.notEqual(shellcheck(['-s', 'sh', file]).code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a truncated install.sh runs nothing: only the last line calls main', () => {
    const text = readFileSync(path.join(ROOT, 'install.sh'), 'utf8');
    const lines = text.trimEnd().split('\n');
    assert.equal(lines[lines.length - 1], 'main "$@"');
    // Cut the script after every line but the last and run what is left with
    // an empty PATH: any command that ran would print "not found" or output.
    const empty = mkdtempSync(path.join(tmpdir(), 'hepto-nopath-'));
    try {
      for (let n = 1; n < lines.length; n++) {
        const r = spawnSync('/bin/sh', ['-s'], { input: lines.slice(0, n).join('\n') + '\n', encoding: 'utf8', env: { PATH: empty } });
        assert.equal(r.stdout, '', `output after cutting at line ${n}`);
        const err = r.stderr.trim();
        if (err !== '') assert.match(err, /Syntax error|unexpected|expecting/, `cut at line ${n} ran something: ${err}`);
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('systemd/hepto-agent.service passes systemd-analyze verify without a warning', () => {
    need('systemd-analyze');
    const r = verifyUnit(readFileSync(UNIT, 'utf8'));
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, '', `systemd-analyze verify printed:\n${r.out}`);
  });

  it('systemd-analyze verify does catch a broken unit (the check can fail)', () => {
    need('systemd-analyze');
    const broken = readFileSync(UNIT, 'utf8').replace('Type=notify', 'Type=notfy').replace('ProtectSystem=full', 'ProtectSytem=full');
    const r = verifyUnit(broken);
    assert.match(r.out, /notfy/);
    assert.match(r.out, /ProtectSytem/);
  });

  it('the unit has what the contract asks for', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const has = (re: RegExp): void => assert.match(unit, re);
    has(/^Type=notify$/m);
    has(/^After=.*network-online\.target/m);
    has(/^After=.*podman\.socket/m);
    has(/^Wants=.*podman\.socket/m);
    has(/^Restart=always$/m);
    has(/^RestartPreventExitStatus=4$/m); // a refused invitation: restarting cannot help
    has(/^RestartSec=\d+s$/m);
    has(/^ExecStart=\/usr\/local\/bin\/hepto-agent run --config \/etc\/hepto\/hepto\.json$/m);
    has(/^NoNewPrivileges=yes$/m);
    has(/^ProtectSystem=full$/m);
    // Nothing that would hide the Podman socket or the node data from the agent.
    assert.doesNotMatch(unit, /^(PrivateDevices|ProtectSystem=strict|InaccessiblePaths|PrivateNetwork)/m);
    // systemd-notify --pid only works as root: no User= that drops it.
    assert.doesNotMatch(unit, /^User=/m);
  });
});
