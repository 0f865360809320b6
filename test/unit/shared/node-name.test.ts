/**
 * One rule for a node name (issue 14, item 10): the config, the handshake,
 * gossip and the admin's signed objects take the same names and refuse the
 * same ones, so a peer cannot authenticate under a name its own records fail.
 */
import assert from 'node:assert/strict';
import { admissionFromJson } from '../../../agent/admin/admission';
import { deriveOverlayKeys } from '../../../agent/net/crypto';
import { ClientHandshake, ServerHandshake } from '../../../agent/net/handshake';
import { generateIdentity } from '../../../agent/net/identity';
import { encodeMessage } from '../../../agent/gossip/messages';
import { decodeMessage } from '../../../agent/gossip/validate';
import { labelProblem } from '../../../shared/config/problems';
import { isHeptoError } from '../../../shared/errors';
import { NODE_NAME_RE } from '../../../shared/node-name';

const GOOD = ['mercury', 'a', 'node-1', '0day', 'x'.repeat(63)];
const BAD = ['Mercury', 'a.b', 'a_b', '-a', 'a-', 'x'.repeat(64), '', 'é', 'a b'];
const keys = deriveOverlayKeys('UnitOverlayKey0123456789abcdefgh');

function config(name: string): boolean {
  return labelProblem(name) === null;
}
function gossip(name: string): boolean {
  try {
    decodeMessage(encodeMessage({ t: 'g', u: [{ k: 's', n: name, i: 1, f: 'other' }] }));
    return true;
  } catch {
    return false;
  }
}
function admission(name: string): boolean {
  try {
    admissionFromJson({ node: name, id_pub: 'A'.repeat(43) + '=', at: 1, sig: 'A'.repeat(86) + '==' });
    return true;
  } catch {
    return false;
  }
}
/** Does a server take a client that proves this name? (The client side is built past its own check.) */
function handshake(name: string): boolean {
  const client = new ClientHandshake(keys, { name: 'probe', identity: generateIdentity(0) });
  (client as unknown as { local: { name: string } }).local.name = name;
  const server = new ServerHandshake(keys, { name: 'server', identity: generateIdentity(0) });
  try {
    const m2 = server.respond(client.hello());
    server.complete(client.finish(m2).message);
    return true;
  } catch (e) {
    if (!isHeptoError(e)) throw e;
    return false;
  }
}

describe('one rule for a node name', () => {
  it('the config, gossip, admissions and the handshake all take the same names', () => {
    for (const n of GOOD) {
      assert.ok(NODE_NAME_RE.test(n), n);
      assert.deepEqual([config(n), gossip(n), admission(n), handshake(n)], [true, true, true, true], `"${n}" (config, gossip, admission, handshake)`);
    }
  });

  it('and all refuse the same ones', () => {
    for (const n of BAD) {
      assert.ok(!NODE_NAME_RE.test(n), n);
      assert.deepEqual([config(n), gossip(n), admission(n), handshake(n)], [false, false, false, false], `"${n}" (config, gossip, admission, handshake)`);
    }
  });
});
