import assert from 'node:assert/strict';
import { JsonLines, parseEvent } from '../../../agent/runtime/events';
import { defaultRouteIface } from '../../../agent/runtime/host-facts';
import { compareVersions } from '../../../agent/runtime/network';
import { demuxLogs } from '../../../agent/runtime/podman-client';
import { isNotFound, isNotModified, isUnreachable, toHeptoError } from '../../../agent/runtime/podman-errors';

const attrs = { 'io.hepto.node': 'n1', name: 'hepto-n1-k3s' };

describe('runtime/events', () => {
  it('accepts both exit code spellings and Podman/Docker field names', () => {
    assert.equal(
      parseEvent({ Type: 'container', Action: 'die', Actor: { ID: 'a', Attributes: { ...attrs, containerExitCode: '137' } }, timeNano: 2e15 })!.exitCode,
      137,
    );
    assert.equal(parseEvent({ Type: 'container', Action: 'die', Actor: { ID: 'a', Attributes: { ...attrs, exitCode: '3' } }, time: 5 })!.exitCode, 3);
    const e = parseEvent({ status: 'oom', id: 'b', Actor: { Attributes: attrs } })!;
    assert.deepEqual([e.kind, e.id, e.exitCode, e.name], ['oom', 'b', null, 'hepto-n1-k3s']);
    assert.equal(parseEvent({ Type: 'container', Action: 'stop', Actor: { ID: 'c', Attributes: attrs } })!.kind, 'stop');
  });
  it('ignores other actions, other types and containers that are not hepto', () => {
    assert.equal(parseEvent({ Type: 'container', Action: 'start', Actor: { Attributes: attrs } }), null);
    assert.equal(parseEvent({ Type: 'image', Action: 'die', Actor: { Attributes: attrs } }), null);
    assert.equal(parseEvent({ Type: 'container', Action: 'die', Actor: { Attributes: { name: 'x' } } }), null);
    assert.equal(parseEvent('garbage'), null);
  });
  it('splits JSON lines across chunks and skips torn lines', () => {
    const got: unknown[] = [];
    const j = new JsonLines();
    j.push('{"a":1}\n{"b"', (v) => got.push(v));
    j.push(':2}\nnot json\n\n{"c":3}\n', (v) => got.push(v));
    assert.deepEqual(got, [{ a: 1 }, { b: 2 }, { c: 3 }]);
  });
});

describe('runtime/podman-errors', () => {
  const http = (statusCode: number, message: string) =>
    Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message}`), { statusCode, json: { message } });
  it('maps adapter quirks to typed outcomes', () => {
    assert.ok(isNotModified(http(304, 'container already started')));
    assert.ok(isNotFound(http(404, 'no such container')));
    const refused = Object.assign(new Error('connect ECONNREFUSED /run/podman/podman.sock'), { code: 'ECONNREFUSED' });
    assert.ok(isUnreachable(refused));
    const e = toHeptoError(refused, 'list containers', '/run/podman/podman.sock');
    assert.equal(e.code, 'PODMAN_UNREACHABLE');
    assert.match(e.describe(), /\/run\/podman\/podman\.sock.*podman\.socket/);
    assert.equal(toHeptoError(Object.assign(new Error('x'), { code: 'ENOENT' }), 'ping', '/s').code, 'PODMAN_UNREACHABLE');
  });
  it('setrlimit refusals become RLIMIT_DENIED with the ulimits fix; a full disk DISK_FULL', () => {
    const r = toHeptoError(http(500, 'runc: container_linux.go: setrlimit `RLIMIT_NOFILE`: operation not permitted'), 'start container hepto-a-k3s', '/s');
    assert.equal(r.code, 'RLIMIT_DENIED');
    assert.match(r.describe(), /"ulimits".*nofile/);
    const runc =
      'runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted';
    assert.equal(toHeptoError(http(500, runc), 'start container x', '/s').code, 'RLIMIT_DENIED');
    assert.equal(toHeptoError(http(500, 'write /var/lib/containers/x: no space left on device'), 'create', '/s').code, 'DISK_FULL');
    const other = toHeptoError(http(409, 'name in use'), 'create container x', '/s');
    assert.equal(other.code, 'INTERNAL');
    assert.match(other.message, /create container x \(HTTP 409\): name in use/);
  });
});

describe('runtime edges', () => {
  it('demultiplexes Docker log frames and passes plain text through', () => {
    const frame = (stream: number, text: string) => {
      const b = Buffer.from(text);
      const h = Buffer.alloc(8);
      h[0] = stream;
      h.writeUInt32BE(b.length, 4);
      return Buffer.concat([h, b]);
    };
    assert.equal(demuxLogs(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')])), 'out\nerr\n');
    assert.equal(demuxLogs(Buffer.from('plain line\n')), 'plain line\n');
  });
  it('finds the default route interface (IPv4, else IPv6)', () => {
    const v4 =
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n' +
      'eth1\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n' +
      'eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\n';
    assert.equal(
      defaultRouteIface((p) => (p.endsWith('route') ? v4 : '')),
      'eth0',
    );
    const v6 =
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003 wlan0\n';
    assert.equal(
      defaultRouteIface((p) => (p.endsWith('ipv6_route') ? v6 : 'Iface\n')),
      'wlan0',
    );
    assert.equal(
      defaultRouteIface(() => {
        throw new Error('no /proc');
      }),
      null,
    );
  });
  it('compares netavark versions numerically', () => {
    assert.ok(compareVersions('1.4.0', '1.5.0') < 0);
    assert.ok(compareVersions('1.10.0', '1.5.0') > 0);
    assert.equal(compareVersions('v1.5', '1.5.0'), 0);
  });
});
