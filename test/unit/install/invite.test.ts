/**
 * The installer and invitations (docs/trust.md, "Invitations"): install.sh's
 * own functions (the script without its last line sourced into sh), run alone
 * with stand-ins for hepto-agent and systemctl.
 *
 * - check_cluster_inputs: HEPTO_INVITE joins (no master, anchors, keys or
 *   admin_pub beside it); a malformed one is refused in one line that never
 *   shows it; a machine whose config has the keys already ignores it (so a
 *   re-run of the same line spends nothing); anchors need an invitation or the
 *   keys, and the keys come as the overlay key plus the agent key (or the
 *   cluster key, on the master).
 * - print_invite_line: a new cluster's machine has its agent make a
 *   single-use, 24 h invitation and prints that command's last line, alone,
 *   on stdout, with what it is around it on stderr; when the agent cannot,
 *   one warning says how to make one by hand.
 * - enrol_self: a machine installed with an invitation says when its agent
 *   shows it enrolled and admitted, or ends with what its status says.
 *
 * The whole installer, with real agents, runs in test/system/installer.test.ts.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync } from 'fs';
import * as path from 'path';
import { installSandbox } from './sandbox';

/** Shaped as a token is (hepto1.<body>.<signature>.<seed>); each part unique, to look for it in output. */
const TOKEN = `hepto1.${'B'.repeat(30)}bodypart.${'S'.repeat(30)}sigpart.${'K'.repeat(30)}seedpart`;
const OVERLAY = 'O'.repeat(16) + 'verlay0123456789';
const AGENT = 'A'.repeat(16) + 'gentkey012345678';
const LINE = `curl -sfL http://192.0.2.254:8080/install.sh | HEPTO_AGENT_URL=http://192.0.2.254:8080/hepto-agent-0.1.0.tar.gz HEPTO_AGENT_SHA256=${'0'.repeat(64)} HEPTO_INVITE=${TOKEN} sh -`;
const IDENTITY = 'ed25519:' + 'C'.repeat(43) + '=';

/**
 * hepto-agent stand-in. `invite`: logs its arguments and HEPTO_JOIN_ENV, exits
 * with the next code of STUB_INVITE_RCS (the last one repeats); on 0 prints
 * what the agent prints, LINE last (STUB_INVITE_LAST replaces it). `status
 * --json`: this node, admitted from the STUB_ADMITTED_AT-th call on (0:
 * never), with STUB_PROBLEM as its first problem.
 */
const AGENT_STUB = `#!/bin/sh
echo "$* HEPTO_JOIN_ENV=\${HEPTO_JOIN_ENV:-}" >>"$STUB_DIR/calls"
next() { n=$(cat "$STUB_DIR/$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >"$STUB_DIR/$1"; echo "$n"; }
case $1 in
  invite)
    n=$(next invites)
    rc=$(echo "$STUB_INVITE_RCS" | tr ' ' '\\n' | sed -n "$n p"); [ -n "$rc" ] || rc=$(echo "$STUB_INVITE_RCS" | tr ' ' '\\n' | tail -n 1)
    case $rc in
      0)
        echo "invitation 0123456789abcdef: 1 use, for any free node name, until 2026-12-07T17:00:00.000Z, through [2001:db8::1]:7951"
        echo "anyone who holds the line below can use it until it is spent or expires: share it privately. On the new machine, from a root shell:"
        printf '%s\\n' "\${STUB_INVITE_LAST-${LINE}}"
        ;;
      3) echo "hepto-agent: hepto-agent is not running (nothing answers on /run/hepto/agent.sock)" >&2 ;;
      *) echo "warning: /etc/hepto/admin.key is readable by others" >&2; echo "hepto-agent: the admin key /etc/hepto/admin.key is not the one this machine's admin_pub names" >&2 ;;
    esac
    exit "$rc"
    ;;
  status)
    n=$(next statuses)
    if [ "$STUB_ADMITTED_AT" != 0 ] && [ "$n" -ge "$STUB_ADMITTED_AT" ]; then at='"2026-12-06T17:00:00.000Z"'; else at=null; fi
    printf '{"node":"n2","members":[{"name":"n1","identity_key":"ed25519:x","admitted_at":"2026-12-06T16:00:00.000Z"},{"name":"n2","self":true,"identity_key":"%s","admitted_at":%s}],"problems":["%s"]}\\n' "$STUB_IDENTITY" "$at" "$STUB_PROBLEM"
    ;;
esac
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: string[];
}

describe('install/invitations', () => {
  let dir: string;
  let lib: string;
  let bin: string;
  let remove: () => void;

  before(() => {
    const box = installSandbox('hepto-invite-');
    ({ dir, lib, bin } = box);
    remove = box.remove;
    const stub = box.stub;
    stub('hepto-agent', AGENT_STUB);
    // is-active: STUB_ACTIVE=1 or not; show -p ActiveState: STUB_STATE; show -p StatusText: a line.
    stub(
      'systemctl',
      '#!/bin/sh\ncase "$*" in\n  *ActiveState*) echo "${STUB_STATE:-active}" ;;\n  *StatusText*) echo "joining: enrolling through [2001:db8::1]:7951" ;;\n  *is-active*) [ "$STUB_ACTIVE" = 1 ] ;;\nesac\n',
    );
    stub('sleep', '#!/bin/sh\nexit 0\n');
    stub('uname', '#!/bin/sh\necho x86_64\n');
  });
  after(() => remove());

  /** Runs `script` after sourcing install.sh's functions, with the stand-ins first on PATH and only `env` set. */
  const sh = (script: string, env: Record<string, string>): Run => {
    const work = mkdtempSync(path.join(dir, 'run-'));
    const r = spawnSync(
      '/bin/sh',
      ['-c', `. "$0"; HEPTO_BIN=${bin}/hepto-agent; TMP_DIR=${work}; HEPTO_ETC=${work}/etc; HEPTO_CONF=${work}/hepto.json; ${script}`, lib],
      {
        encoding: 'utf8',
        env: {
          PATH: `${bin}:${process.env.PATH}`,
          STUB_DIR: work,
          STUB_ACTIVE: '1',
          STUB_INVITE_RCS: '0',
          STUB_ADMITTED_AT: '1',
          STUB_PROBLEM: '',
          STUB_IDENTITY: IDENTITY,
          NODE_BIN: process.execPath,
          NODE_NAME: 'n1',
          ...env,
        },
      },
    );
    const calls = existsSync(path.join(work, 'calls')) ? readFileSync(path.join(work, 'calls'), 'utf8').split('\n').filter(Boolean) : [];
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: calls.map((c) => c.split(work).join('<work>')) };
  };

  /** Neither the invitation nor any part of it, nor a key, in `text`. */
  const assertNoSecret = (text: string): void => {
    for (const s of [TOKEN, 'bodypart', 'sigpart', 'seedpart', OVERLAY, AGENT])
      assert.ok(!text.includes(s), `a secret (${s.slice(0, 8)}…) was shown:\n${text.split(s).join('[SECRET]')}`);
  };

  describe('check_cluster_inputs', () => {
    /** check_cluster_inputs with `conf` as the existing config (null: none); its verdict on stdout. */
    const decide = (env: Record<string, string>, conf: Record<string, unknown> | null = null): Run => {
      const confLine = conf === null ? '' : `printf '%s' "$CONF_TEXT" >"$HEPTO_CONF"; `;
      return sh(`${confLine}check_cluster_inputs; echo "new=$NEW_CLUSTER invited=$INVITED invite=\${HEPTO_INVITE:+set}"`, {
        ...env,
        ...(conf === null ? {} : { CONF_TEXT: JSON.stringify(conf, null, 2) }),
      });
    };

    it('no anchors, no keys, no invitation: a new cluster', () => {
      const r = decide({});
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'new=1 invited=0 invite=\n');
      assert.equal(r.stderr, '');
    });

    it('HEPTO_INVITE alone (the printed line): a join by invitation, silently', () => {
      const r = decide({ HEPTO_INVITE: TOKEN, HEPTO_NODE: 'n2', HEPTO_GOSSIP_PORT: '7952' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'new=0 invited=1 invite=set\n');
      assert.equal(r.stderr, '');
    });

    it('HEPTO_INVITE with what it brings itself: one [ERROR] line naming those variables, no secret shown', () => {
      const r = decide({
        HEPTO_INVITE: TOKEN,
        HEPTO_ANCHORS: '[2001:db8::1]:7947',
        HEPTO_OVERLAY_KEY: OVERLAY,
        HEPTO_AGENT_KEY: AGENT,
        HEPTO_ADMIN_PUB: IDENTITY,
      });
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(
        r.stderr.trim(),
        /^\[ERROR\] HEPTO_INVITE brings the anchors, the keys, admin_pub and the master from the cluster: leave HEPTO_ANCHORS HEPTO_OVERLAY_KEY HEPTO_AGENT_KEY HEPTO_ADMIN_PUB unset .*nothing was installed$/,
      );
      assertNoSecret(r.stderr);
    });

    for (const [what, bad] of [
      ['another prefix', TOKEN.replace('hepto1.', 'hepto2.')],
      ['a part missing', TOKEN.slice(0, TOKEN.lastIndexOf('.'))],
      ['a part too many', `${TOKEN}.extra`],
      ['an empty part', TOKEN.replace('.', '..').replace(/\.[^.]*$/, '')],
      ['a space (half of a line pasted)', TOKEN.replace('sigpart', 'sig part')],
      ['a quote', `${TOKEN}'`],
    ] as Array<[string, string]>) {
      it(`a malformed HEPTO_INVITE (${what}): one [ERROR] line that never shows it`, () => {
        const r = decide({ HEPTO_INVITE: bad });
        assert.equal(r.code, 1, r.stdout);
        assert.equal(r.stdout, '');
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /^\[ERROR\] HEPTO_INVITE is not an invitation.*copy it whole from the line hepto-agent invite printed; nothing was installed$/);
        assertNoSecret(r.stderr);
      });
    }

    it('a machine whose config has the keys (enrolled already) ignores HEPTO_INVITE, so a re-run spends nothing', () => {
      const r = decide({ HEPTO_INVITE: TOKEN }, { node: 'n2', master: 'n1', overlay_key: OVERLAY, agent_key: AGENT });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'new=0 invited=0 invite=\n', 'HEPTO_INVITE is still set for the config merge');
      assert.match(
        r.stderr,
        /^\[INFO\] {2}this machine is already a member \(its config holds the cluster's keys\): HEPTO_INVITE is not used, and the invitation is not spent\n$/,
      );
    });

    it('a config still waiting to enrol: a re-run without HEPTO_INVITE is no new cluster', () => {
      for (const conf of [
        { node: 'n2', invite: TOKEN },
        { node: 'n2', invite: TOKEN, overlay_key: null },
      ]) {
        const r = decide({}, conf);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'new=0 invited=1 invite=\n');
      }
    });

    it('a member enrolled by invitation (overlay_key and agent_key, no cluster_key): a re-run is no new cluster', () => {
      const r = decide({}, { node: 'n2', master: 'n1', overlay_key: OVERLAY, agent_key: AGENT });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'new=0 invited=0 invite=\n');
    });

    it('the keys the old way: the overlay key with the agent key (or the cluster key, on the master)', () => {
      for (const k3s of [{ HEPTO_AGENT_KEY: AGENT }, { HEPTO_CLUSTER_KEY: AGENT }] as Array<Record<string, string>>) {
        const r = decide({ HEPTO_ANCHORS: '[2001:db8::1]:7947', HEPTO_OVERLAY_KEY: OVERLAY, HEPTO_MASTER: 'n1', ...k3s });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'new=0 invited=0 invite=\n');
      }
    });

    for (const [what, env, re] of [
      [
        'anchors without an invitation or keys',
        { HEPTO_ANCHORS: '[2001:db8::1]:7947' },
        /^\[ERROR\] joining through HEPTO_ANCHORS needs an invitation \(HEPTO_INVITE: run hepto-agent invite .*\) or the keys \(HEPTO_OVERLAY_KEY and HEPTO_AGENT_KEY\)/,
      ],
      [
        'the overlay key alone',
        { HEPTO_OVERLAY_KEY: OVERLAY },
        /^\[ERROR\] HEPTO_OVERLAY_KEY is set but HEPTO_AGENT_KEY is not: .*join with an invitation instead/,
      ],
      ['the agent key alone', { HEPTO_AGENT_KEY: AGENT }, /^\[ERROR\] HEPTO_AGENT_KEY or HEPTO_CLUSTER_KEY is set but HEPTO_OVERLAY_KEY is not/],
    ] as Array<[string, Record<string, string>, RegExp]>) {
      it(`${what}: one [ERROR] line, no key shown`, () => {
        const r = decide(env);
        assert.equal(r.code, 1, r.stdout);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, re);
        assertNoSecret(r.stderr);
      });
    }
  });

  describe('print_invite_line (a new cluster)', () => {
    const invite = (env: Record<string, string> = {}): Run =>
      sh('JOIN_INSTALL_URL=http://192.0.2.254:8080/install.sh; HEPTO_JOIN_ENV_FILE=/etc/hepto/join.env; INVITE_WAIT=3; print_invite_line', env);

    it('prints, alone on stdout, the last line hepto-agent invite --ttl 24h --uses 1 printed; what it is goes to stderr', () => {
      const r = invite({ CONF_WESHER_SHA256: 'ab'.repeat(32) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${LINE}\n`);
      assert.deepEqual(r.calls, ['invite --ttl 24h --uses 1 --admin-key <work>/etc/admin.key --config <work>/hepto.json HEPTO_JOIN_ENV=/etc/hepto/join.env']);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines[0], '[INFO]  new cluster created; this machine (n1) is its master and first anchor');
      assert.ok(
        lines.includes('[INFO]  invitation 0123456789abcdef: 1 use, for any free node name, until 2026-12-07T17:00:00.000Z, through [2001:db8::1]:7951'),
        r.stderr,
      );
      assert.ok(
        lines.some((l) =>
          /^\[WARN\] {2}the join line fetches install\.sh over plain http \(http:\/\/192\.0\.2\.254:8080\/install\.sh\), and passes it the invitation/.test(l),
        ),
        r.stderr,
      );
      assert.ok(
        lines.some((l) => /HEPTO_WESHER_SHA256 pins the wesher binary for this machine's architecture, x86_64/.test(l)),
        r.stderr,
      );
      assert.ok(
        lines.some((l) => /from a root shell \(sudo -i; not 'sudo HEPTO_\.\.\.=\.\.\.', which shows the invitation to every user\)/.test(l)),
        r.stderr,
      );
      // Said in so many words: one machine, 24 hours, and how to make more.
      assert.equal(
        lines[lines.length - 1],
        '[INFO]  the line is an invitation for ONE machine, valid for 24 h: share it privately. For more machines, run here (it holds the admin key): hepto-agent invite --uses N [--ttl 24h]',
      );
      assertNoSecret(r.stderr);
    });

    it('no plain http warning for install.sh over https', () => {
      const r = sh('JOIN_INSTALL_URL=https://releases.example/install.sh; print_invite_line', {});
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /\[WARN\]/);
    });

    it('retries while the agent does not answer on its control socket yet', () => {
      const r = invite({ STUB_INVITE_RCS: '3 3 0' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.calls.length, 3);
      assert.equal(r.stdout, `${LINE}\n`);
    });

    for (const [what, env, why] of [
      ['the agent never answers', { STUB_INVITE_RCS: '3' }, 'hepto-agent is not running (nothing answers on /run/hepto/agent.sock)'],
      ['the agent refuses (not retried)', { STUB_INVITE_RCS: '1' }, "the admin key /etc/hepto/admin.key is not the one this machine's admin_pub names"],
      ['no join line in what it printed', { STUB_INVITE_LAST: 'something else' }, 'hepto-agent invite exited 0 without a join line'],
    ] as Array<[string, Record<string, string>, string]>) {
      it(`${what}: no line, one warning saying how to make one by hand`, () => {
        const r = invite(env);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, '');
        assert.equal(r.calls.length, env.STUB_INVITE_RCS === '3' ? 4 : 1);
        const warns = r.stderr.split('\n').filter((l) => l.startsWith('[WARN]'));
        assert.deepEqual(warns, [
          `[WARN]  could not make an invitation for the next machine: ${why}; make one here with: hepto-agent invite --ttl 24h --uses 1 (its last line joins the next machine)`,
        ]);
      });
    }

    it('HEPTO_SKIP_START=1, a failed start or a service that is not active: the agent is not asked; the warning says what to run once it runs', () => {
      for (const env of [{ HEPTO_SKIP_START: '1' }, { START_FAILED: 'hepto-agent exited while starting' }, { STUB_ACTIVE: '0' }] as Array<
        Record<string, string>
      >) {
        const r = invite(env);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.calls, []);
        assert.equal(r.stdout, '');
        assert.match(
          r.stderr,
          /^\[WARN\] {2}no join line yet: an invitation needs the running agent; once hepto-agent runs, make one here with: hepto-agent invite --ttl 24h --uses 1 /m,
        );
      }
    });
  });

  describe('enrol_self (a machine installed with an invitation)', () => {
    const enrol = (env: Record<string, string>): Run => sh('ENROL_WAIT=3; enrol_self; printf "%s" "$ADMIT_NOTE"', { NODE_NAME: 'n2', ...env });

    it('says once the agent shows this machine enrolled and admitted, and leaves no note', () => {
      const r = enrol({ STUB_ADMITTED_AT: '3' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `[INFO]  enrolled with the invitation: n2 is a member of the cluster, admitted (identity ${IDENTITY})\n`);
      assert.equal(r.calls.filter((c) => c.startsWith('status')).length, 3);
    });

    it('not enrolled in time: the note names the first problem the agent shows', () => {
      const r = enrol({ STUB_ADMITTED_AT: '0', STUB_PROBLEM: 'enrolment refused by [2001:db8::1]:7951: the invitation is spent' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(
        r.stdout,
        'this machine has not enrolled with its invitation yet (after 3s): enrolment refused by [2001:db8::1]:7951: the invitation is spent; see hepto-agent status and journalctl -u hepto-agent',
      );
    });

    it('not enrolled and no problem shown: the note gives the service status line', () => {
      const r = enrol({ STUB_ADMITTED_AT: '0' });
      assert.match(r.stdout, /after 3s\): joining: enrolling through \[2001:db8::1\]:7951; see hepto-agent status/);
    });

    it('HEPTO_SKIP_START=1 or a stopped service: the agent is not asked; the note says it enrols once it runs', () => {
      for (const env of [{ HEPTO_SKIP_START: '1' }, { STUB_STATE: 'failed' }] as Array<Record<string, string>>) {
        const r = enrol(env);
        assert.deepEqual(r.calls, []);
        assert.equal(r.stdout, 'once hepto-agent runs, it enrols with the invitation (until the invitation expires); hepto-agent status shows how that went');
      }
    });
  });

  it('main: after the start, a machine with an invitation reports its enrolment and a new cluster prints its invitation line', () => {
    const text = readFileSync(lib, 'utf8');
    const main = /^main\(\) \{\n([\s\S]*?)\n\}$/m.exec(text.slice(text.lastIndexOf('\nmain() {')))?.[1] ?? '';
    const order = main.split('\n').map((l) => l.trim());
    const at = (f: string): number => order.findIndex((l) => l === f || l.includes(`then ${f}; fi`));
    assert.ok(at('start_service') >= 0 && at('admit_self') > at('start_service'), main);
    assert.ok(order.includes('if [ "$INVITED" = 1 ] && [ -z "${START_FAILED:-}" ] && ! dry; then enrol_self; fi'), main);
    assert.ok(order.includes('if [ "$NEW_CLUSTER" = 1 ] && ! dry; then print_invite_line; fi'), main);
    // The invitation needs the admitted anchor: after admit_self.
    assert.ok(at('print_invite_line') > at('admit_self'), main);
    assert.doesNotMatch(text, /print_join_line/, 'the key-carrying join line is gone');
  });
});
