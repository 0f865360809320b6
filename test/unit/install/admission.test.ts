/**
 * The installer and pinned names (issue 13): after the service started,
 * admit_self (install.sh's own function, the script without its last line
 * sourced into sh) admits this machine's node when this machine holds the
 * admin key that admin_pub names, and otherwise leaves, in ADMIT_NOTE (the
 * installer's last line), the command the admin runs for this machine. The
 * agent is a stand-in script here; the whole installer, with real agents,
 * runs in test/system/installer.test.ts.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'fs';
import * as path from 'path';
import { installSandbox } from './sandbox';

const ADMIN_PUB = 'ed25519:' + 'A'.repeat(43) + '=';
const OTHER_PUB = 'ed25519:' + 'B'.repeat(43) + '=';
const IDENTITY = 'ed25519:' + 'C'.repeat(43) + '=';

/**
 * The agent stand-in: `status --json` shows this node with STUB_ADMITTED
 * (empty: no admission; "down": the agent does not answer, exit 3),
 * `admin pub` prints STUB_PUB, `admit` logs its arguments and exits with the
 * next code of STUB_ADMIT_RCS (the last one repeats).
 */
const AGENT_STUB = `#!/bin/sh
echo "$*" >>"$STUB_DIR/calls"
case $1 in
  status)
    [ "$STUB_ADMITTED" = down ] && { echo "hepto-agent: hepto-agent is not running" >&2; exit 3; }
    if [ -n "$STUB_ADMITTED" ]; then at="\\"$STUB_ADMITTED\\""; else at=null; fi
    printf '{"node":"n1","members":[{"name":"n0","identity_key":"ed25519:x","admitted_at":null},{"name":"n1","self":true,"identity_key":"%s","admitted_at":%s}]}\\n' "$STUB_IDENTITY" "$at"
    ;;
  admin) echo "$STUB_PUB" ;;
  admit)
    n=$(cat "$STUB_DIR/admits" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >"$STUB_DIR/admits"
    rc=$(echo "$STUB_ADMIT_RCS" | tr ' ' '\\n' | sed -n "$n p"); [ -n "$rc" ] || rc=$(echo "$STUB_ADMIT_RCS" | tr ' ' '\\n' | tail -n 1)
    if [ "$rc" = 0 ]; then echo "admitted: n1 identity abcd"; echo "1 of 1 admission handed to the agent, which spreads them to the cluster"; fi
    if [ "$rc" = 3 ]; then echo "hepto-agent: hepto-agent is not running (nothing answers on /run/hepto/agent.sock)" >&2; fi
    if [ "$rc" = 1 ]; then echo "hepto-agent: the agent refused the admission of n1: a newer admission names another identity" >&2; echo "0 of 1 admission handed to the agent, which spreads them to the cluster; to retry one: hepto-agent admit n1 --identity x"; fi
    exit "$rc"
    ;;
esac
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: string[];
}

describe('install/admission of this machine (pinned names)', () => {
  let dir: string;
  let lib: string;
  let bin: string;
  let remove: () => void;

  before(() => {
    const box = installSandbox('hepto-admit-');
    ({ dir, lib, bin } = box);
    remove = box.remove;
    const stub = box.stub;
    stub('hepto-agent', AGENT_STUB);
    // systemctl is-active: STUB_ACTIVE=0 or 1; no waiting in the retries.
    stub('systemctl', '#!/bin/sh\n[ "$STUB_ACTIVE" = 1 ]\n');
    stub('sleep', '#!/bin/sh\nexit 0\n');
  });
  after(() => remove());

  /** admit_self with the stand-ins, then ADMIT_NOTE on stdout. `adminKey`: whether $HEPTO_ETC/admin.key exists. */
  const admitSelf = (opts: { adminKey: boolean; env: Record<string, string> }): Run => {
    const work = mkdtempSync(path.join(dir, 'run-'));
    const etc = path.join(work, 'etc');
    mkdirSync(etc);
    if (opts.adminKey) writeFileSync(path.join(etc, 'admin.key'), '{"kind":"hepto-admin-key"}\n', { mode: 0o600 });
    const script = `. "$0"; HEPTO_BIN=${bin}/hepto-agent; HEPTO_ETC=${etc}; HEPTO_CONF=${work}/hepto.json; TMP_DIR=${work}; ADMIT_WAIT=3; admit_self; printf '%s' "$ADMIT_NOTE"`;
    const r = spawnSync('/bin/sh', ['-c', script, lib], {
      encoding: 'utf8',
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        STUB_DIR: work,
        STUB_ACTIVE: '1',
        STUB_IDENTITY: IDENTITY,
        STUB_ADMITTED: '',
        STUB_PUB: ADMIN_PUB,
        STUB_ADMIT_RCS: '0',
        NODE_BIN: process.execPath,
        NODE_NAME: 'n1',
        CONF_ADMIN_PUB: ADMIN_PUB,
        ...opts.env,
      },
    });
    const calls = existsSync(path.join(work, 'calls')) ? readFileSync(path.join(work, 'calls'), 'utf8').split('\n').filter(Boolean) : [];
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: calls.map((c) => c.split(etc).join('<etc>')) };
  };

  it('the machine with the admin key that admin_pub names admits its own node, and says so in one line', () => {
    const r = admitSelf({ adminKey: true, env: {} });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, ['status --json', 'admin pub --admin-key <etc>/admin.key', 'admit n1 --admin-key <etc>/admin.key']);
    assert.equal(r.stderr, `[INFO]  admitted this machine (n1, identity ${IDENTITY}) with the cluster's admin key; its agent spreads the admission\n`);
    assert.equal(r.stdout, '', 'no note for the end');
  });

  it('a node that shows an admission already is left alone, silently', () => {
    for (const adminKey of [true, false]) {
      const r = admitSelf({ adminKey, env: { STUB_ADMITTED: '2024-05-01T10:00:00.000Z' } });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.calls, ['status --json']);
      assert.equal(r.stderr + r.stdout, '');
    }
  });

  it('a joiner (no admin key) gets, for the end, the exact admit command with its identity', () => {
    const r = admitSelf({ adminKey: false, env: {} });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, ['status --json']);
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      `this machine must be admitted before the cluster accepts it: on the machine with the admin key, run: hepto-agent admit n1 --identity ${IDENTITY}`,
    );
  });

  it('an admin key of another cluster (kept by the uninstaller) is not used: the machine is a joiner', () => {
    const r = admitSelf({ adminKey: true, env: { STUB_PUB: OTHER_PUB } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.calls.some((c) => c.startsWith('admit')), r.calls.join('\n'));
    assert.match(r.stdout, new RegExp(`run: hepto-agent admit n1 --identity ${IDENTITY.replace(/[+/=]/g, '\\$&')}$`));
  });

  it('no admin_pub: nothing to do, nothing asked', () => {
    const r = admitSelf({ adminKey: true, env: { CONF_ADMIN_PUB: '' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, []);
    assert.equal(r.stderr + r.stdout, '');
  });

  it('retries while the agent does not answer on its control socket yet', () => {
    const r = admitSelf({ adminKey: true, env: { STUB_ADMIT_RCS: '3 3 0' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.calls.filter((c) => c.startsWith('admit')).length, 3);
    assert.match(r.stderr, /^\[INFO\] {2}admitted this machine \(n1, /);
  });

  for (const [what, rcs, reason] of [
    ['the agent never answers', '3', /hepto-agent is not running \(nothing answers on \/run\/hepto\/agent\.sock\)/],
    ['the agent refuses the admission (not retried)', '1', /the agent refused the admission of n1: a newer admission names another identity/],
  ] as Array<[string, string, RegExp]>) {
    it(`${what}: one warning naming the command to run by hand, and the install goes on`, () => {
      const r = admitSelf({ adminKey: true, env: { STUB_ADMIT_RCS: rcs } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.calls.filter((c) => c.startsWith('admit')).length, rcs === '3' ? 4 : 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^\[WARN\] {2}could not admit this machine: /);
      assert.match(lines[0], reason);
      assert.match(lines[0], /; the cluster refuses it until you run: hepto-agent admit n1 --admin-key \S+\/admin\.key$/);
    });
  }

  it('an agent that does not answer status: the identity comes from <storage_base>/<node>/identity.json, its public half only', () => {
    const work = mkdtempSync(path.join(dir, 'state-'));
    mkdirSync(path.join(work, 'n1'));
    writeFileSync(
      path.join(work, 'n1', 'identity.json'),
      JSON.stringify({ version: 1, public: 'D'.repeat(43) + '=', private: 'SECRET'.repeat(10), created_at: 1 }),
    );
    const conf = path.join(work, 'hepto.json');
    writeFileSync(conf, JSON.stringify({ node: 'n1', storage_base: work }));
    const script = `. "$0"; HEPTO_BIN=${bin}/hepto-agent; HEPTO_ETC=${work}/etc; HEPTO_CONF=${conf}; TMP_DIR=${work}; ADMIT_WAIT=1; admit_self; printf '%s' "$ADMIT_NOTE"`;
    const r = spawnSync('/bin/sh', ['-c', script, lib], {
      encoding: 'utf8',
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        STUB_DIR: work,
        STUB_ACTIVE: '1',
        STUB_ADMITTED: 'down',
        NODE_BIN: process.execPath,
        NODE_NAME: 'n1',
        CONF_ADMIN_PUB: ADMIN_PUB,
      },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      `this machine must be admitted before the cluster accepts it: on the machine with the admin key, run: hepto-agent admit n1 --identity ed25519:${'D'.repeat(43)}=`,
    );
    assert.ok(!(r.stdout + r.stderr).includes('SECRET'), 'the private key was shown');
  });

  it('HEPTO_SKIP_START=1 or a service that is not active: no agent is asked; the note says what to do once it runs', () => {
    for (const env of [{ HEPTO_SKIP_START: '1' }, { STUB_ACTIVE: '0' }] as Array<Record<string, string>>) {
      const admin = admitSelf({ adminKey: true, env });
      assert.ok(!admin.calls.some((c) => c.startsWith('status') || c.startsWith('admit')), admin.calls.join('\n'));
      assert.match(admin.stdout, /^once hepto-agent runs, admit this machine, or the cluster refuses it: hepto-agent admit n1 --admin-key \S+\/admin\.key$/);
      const joiner = admitSelf({ adminKey: false, env });
      assert.deepEqual(joiner.calls, []);
      assert.match(joiner.stdout, /^once hepto-agent runs, this machine must be admitted before the cluster accepts it: hepto-agent status names the command/);
    }
  });

  it('main admits after the service started (not after a failed start, not in a dry run), and prints the note last', () => {
    const text = readFileSync(lib, 'utf8');
    const main = /^main\(\) \{\n([\s\S]*?)\n\}$/m.exec(text.slice(text.lastIndexOf('\nmain() {')))?.[1] ?? '';
    const order = main.split('\n').map((l) => l.trim());
    const at = (f: string): number => order.findIndex((l) => l === f || l.includes(`then ${f}; fi`));
    assert.ok(at('start_service') >= 0 && at('admit_self') > at('start_service'), main);
    assert.ok(order.includes('if [ -z "${START_FAILED:-}" ] && ! dry; then admit_self; fi'), main);
    assert.equal(order[order.length - 1], 'if [ -n "${ADMIT_NOTE:-}" ]; then warn "$ADMIT_NOTE"; fi', main);
  });
});
