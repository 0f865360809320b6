/**
 * Peer strings never drive root's terminal (issue 14, item 7): gossip refuses
 * control characters at the edge, and status, the STATUS line and plain logs
 * escape whatever reaches them.
 */
import assert from 'node:assert/strict';
import { encodeMessage } from '../../../agent/gossip/messages';
import { decodeMessage } from '../../../agent/gossip/validate';
import { signRecord } from '../../../agent/gossip/records';
import { identity, recordFor } from '../gossip/helpers';
import { isHeptoError } from '../../../shared/errors';
import { memoryLogger } from '../../helpers/memory-logger';
import { printable } from '../../../shared/printable';
import { buildStatus, formatStatus, statusLine } from '../../../shared/status';

const HOSTILE = ['\u001b[2J\u001b[Hroot# ', 'bell\u0007', 'back\rover', 'csi\u009b31m', 'rtl\u202eeslaf'];
const raw = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('peer strings on the terminal', () => {
  it('printable escapes control characters and bidi overrides, and leaves the rest alone', () => {
    assert.equal(printable('a\u001bb\u0007c\rd\u202ee\n'), 'a\\x1bb\\x07c\\rd\\u202ee\\n');
    assert.equal(printable('mercury · 10.0.0.1 — ok'), 'mercury · 10.0.0.1 — ok');
  });

  it('gossip refuses a record whose strings hold control characters, naming the field', () => {
    const id = identity('evil');
    for (const bad of HOSTILE) {
      const rec = recordFor('evil', '127.0.0.9:7947', id);
      rec.addresses = [bad];
      const bytes = encodeMessage({ t: 'g', u: [{ k: 'a', r: signRecord(rec, 1, id.secretKey) }] });
      assert.throws(
        () => decodeMessage(bytes),
        (e: unknown) => isHeptoError(e) && e.code === 'FRAME_REJECTED' && /addresses\[0\] holds a control character/.test(e.message),
        JSON.stringify(bad),
      );
      const health = recordFor('evil', '127.0.0.9:7947', id);
      health.facts.os = bad;
      assert.throws(() => decodeMessage(encodeMessage({ t: 'g', u: [{ k: 'a', r: signRecord(health, 1, id.secretKey) }] })), /control character/);
    }
  });

  it('status, its STATUS line and plain logs escape whatever reaches them', () => {
    const id = identity('evil');
    const rec = recordFor('evil', HOSTILE[0]!, id);
    const doc = buildStatus({
      node: 'evil',
      version: '0',
      runtime: 'none',
      startedAt: 0,
      members: [{ name: 'evil', state: 'alive', incarnation: 1, record: rec, lastSeen: 0, identity: 'x' }],
      containers: [],
      problems: HOSTILE.map((h) => `refused a peer at ${h}`),
    });
    const text = formatStatus(doc, 0);
    for (const line of text.split('\n')) assert.ok(!raw.test(line), JSON.stringify(line));
    assert.equal(text.split('\n').length, 12, 'no line added or split by a peer string (the table, and the smallest path MTU line)');
    assert.ok(text.includes('\\x1b[2J'), 'shown, escaped');
    assert.ok(!raw.test(statusLine(doc)));
    const { logger, lines } = memoryLogger('debug', 'plain');
    logger.warn('connection refused', { remote: HOSTILE[0], reason: HOSTILE[2] });
    assert.equal(lines.length, 1);
    assert.ok(!raw.test(lines[0]!), JSON.stringify(lines[0]));
  });
});
