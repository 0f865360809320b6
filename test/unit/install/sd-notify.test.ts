import { strict as assert } from 'assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { createNotifier, statusText, watchdogPeriodMs, MAX_STATUS_LENGTH, type NotifySender } from '../../../agent/daemon/sd-notify';
import { registerSecret } from '../../../shared/log';
import { memoryLogger } from '../../helpers/memory-logger';

/** A stand-in systemd-notify: a real executable that records each call's arguments, one line per call. */
function fakeHelper(dir: string): { command: string; calls: () => string[][] } {
  const record = path.join(dir, 'calls');
  const command = path.join(dir, 'systemd-notify');
  writeFileSync(command, `#!/bin/sh\nprintf '%s\\t' "$@" >>'${record}'\nprintf '\\n' >>'${record}'\n`, { mode: 0o755 });
  return {
    command,
    calls: () =>
      existsSync(record)
        ? readFileSync(record, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split('\t').filter(Boolean))
        : [],
  };
}

/** A sender the test releases by hand, to see what queues up while one message is in flight. */
function gatedSender(): { send: NotifySender; sent: string[][]; release: () => void } {
  const sent: string[][] = [];
  let open: (() => void) | undefined;
  const send: NotifySender = (a) =>
    new Promise<void>((resolve) => {
      sent.push(a);
      open = resolve;
    });
  return { send, sent, release: () => open?.() };
}

describe('install/sd-notify', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hepto-sdnotify-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('does nothing at all without NOTIFY_SOCKET', async () => {
    const helper = fakeHelper(dir);
    const { logger, lines } = memoryLogger();
    const n = createNotifier({ env: {}, logger, command: helper.command });
    n.status('mesh 1/1 alive');
    n.ready();
    n.stopping();
    await n.flush();
    assert.deepEqual(helper.calls(), []);
    assert.equal(n.watchdog, undefined);
    assert.deepEqual(lines, []);
  });

  it('runs the helper with our pid, READY carrying the current status, each status line once', async () => {
    const helper = fakeHelper(dir);
    const { logger } = memoryLogger();
    const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x', PATH: process.env.PATH }, logger, command: helper.command, pid: 4242 });
    n.status('starting');
    await n.flush();
    n.status('mesh 1/1 alive · wesher running · k3s running');
    n.ready();
    n.status('mesh 1/1 alive · wesher running · k3s running');
    await n.flush();
    n.stopping();
    await n.flush();
    assert.deepEqual(helper.calls(), [
      ['--pid=4242', 'STATUS=starting'],
      ['--pid=4242', 'STATUS=mesh 1/1 alive · wesher running · k3s running'],
      ['--pid=4242', 'READY=1', 'STATUS=mesh 1/1 alive · wesher running · k3s running'],
      ['--pid=4242', 'STOPPING=1', 'STATUS=stopping'],
    ]);
  });

  it('keeps order and replaces a waiting status line by the newest one', async () => {
    const gate = gatedSender();
    const { logger } = memoryLogger();
    const n = createNotifier({ env: { NOTIFY_SOCKET: '@x' }, logger, send: gate.send });
    n.status('a');
    n.status('b');
    n.status('c');
    n.ready();
    n.status('d');
    n.status('e');
    for (let i = 0; i < 10 && gate.sent.length < 4; i++) {
      gate.release();
      await new Promise((r) => setImmediate(r));
    }
    gate.release();
    await n.flush();
    assert.deepEqual(gate.sent, [['STATUS=a'], ['STATUS=c'], ['READY=1', 'STATUS=c'], ['STATUS=e']]);
  });

  it('logs one clear error when systemd-notify is missing, and never throws', async () => {
    const { logger, lines } = memoryLogger();
    const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x', PATH: dir }, logger, command: path.join(dir, 'no-such-helper') });
    n.status('one');
    n.ready();
    n.status('two');
    await n.flush();
    const errors = lines.filter((l) => l.includes('"level":"error"'));
    assert.equal(errors.length, 1, lines.join('\n'));
    assert.match(errors[0], /systemd-notify is not installed/);
  });

  it('logs a failing helper as a warning and goes on with the next message', async () => {
    const failing = path.join(dir, 'fails');
    writeFileSync(failing, '#!/bin/sh\necho "No such socket" >&2\nexit 1\n', { mode: 0o755 });
    const { logger, lines } = memoryLogger();
    const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, logger, command: failing });
    n.ready();
    await n.flush();
    assert.equal(lines.length, 1);
    assert.match(lines[0], /systemd notification failed.*READY.*No such socket/);
  });

  it('statusText: one printable line, secrets scrubbed, bounded', () => {
    registerSecret('Abcdefgh12345678Abcdefgh12345678');
    assert.equal(statusText('mesh 2/3 alive\nwesher\trunning'), 'mesh 2/3 alive wesher running');
    assert.equal(statusText('bad key Abcdefgh12345678Abcdefgh12345678 here'), 'bad key [redacted] here');
    const long = statusText('x'.repeat(1000));
    assert.equal(long.length, MAX_STATUS_LENGTH);
    assert.ok(long.endsWith('…'));
  });

  it('offers watchdog() only when systemd asked for one, for this pid', async () => {
    assert.equal(watchdogPeriodMs({}, 1), undefined);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '30000000' }, 1), 30000);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '2' }, 1), undefined);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: 'x' }, 1), undefined);
    const gate = gatedSender();
    const { logger } = memoryLogger();
    const n = createNotifier({ env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '4000000' }, logger, send: gate.send, pid: 7 });
    assert.equal(n.watchdogMs, 4000);
    assert.ok(n.watchdog);
    n.watchdog();
    gate.release();
    await n.flush();
    assert.deepEqual(gate.sent, [['WATCHDOG=1']]);
  });
});
