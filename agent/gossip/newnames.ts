/**
 * Fake members (issue 14, attack 2). Without admin_pub any member holding the
 * overlay key can sign records for as many made-up names as it likes. Here:
 *
 * - names new to this agent are rate-limited per sender (the authenticated
 *   ctx.from): a bucket of NEW_NAMES_PER_MINUTE, refilled continuously. One
 *   honest sender relays at most the whole cluster to a joiner in one sync
 *   reply (a 1,000-member join storm: under 1,000 new names from the anchor),
 *   and a joiner that got only part of it pulls the rest from the next member
 *   it syncs with, whose bucket is its own. The token is taken before the
 *   signature is checked, so bad signatures spend the bucket too.
 * - a record's addresses must be IP literals with a port: a host name would
 *   make every agent resolve it (DNS lookups, and dials, on a peer's word).
 * - dead entries are forgotten after a retention (rules.ts runTimers), and a
 *   name just forgotten is not learnt again as dead from a peer that still
 *   holds it (`forgotten`), or two members would hand it back and forth.
 */
import { isIP } from 'net';
import type { SignedRecord } from '../../shared/member';
import type { Ctx, State } from './state';
import { count } from './state';

/** New names accepted per sender per minute (a burst of as many, then a steady rate). */
export const NEW_NAMES_PER_MINUTE = 1024;
/** Senders tracked at most; the oldest ledger goes first. */
const MAX_LEDGERS = 4096;

export interface NewNameLedger {
  tokens: number;
  at: number;
}

/** May the sender of this message introduce one more name? Always for this agent itself (no sender). */
export function mayLearnName(s: State, ctx: Ctx): boolean {
  const from = ctx.from?.name;
  if (from === undefined || from === s.selfName) return true;
  let l = s.newNames.get(from);
  if (!l) {
    if (s.newNames.size >= MAX_LEDGERS) s.newNames.delete(s.newNames.keys().next().value as string);
    l = { tokens: NEW_NAMES_PER_MINUTE, at: ctx.now };
    s.newNames.set(from, l);
  } else if (ctx.now > l.at) {
    l.tokens = Math.min(NEW_NAMES_PER_MINUTE, l.tokens + ((ctx.now - l.at) * NEW_NAMES_PER_MINUTE) / 60_000);
    l.at = ctx.now;
  }
  if (l.tokens < 1) {
    count(s, 'new-names-limited');
    return false;
  }
  l.tokens--;
  return true;
}

/** host:port with an IP literal host ([v6]:port for IPv6) and a port in 1..65535. */
export function isIpEndpoint(a: string): boolean {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(a) ?? /^([0-9.]+):(\d{1,5})$/.exec(a);
  if (!m) return false;
  const host = m[1] as string;
  const port = Number(m[2]);
  const family = isIP(host);
  if (family === 0 || (family === 6) !== a.startsWith('[')) return false;
  return port >= 1 && port <= 65535;
}

/** Every address of the record is an IP endpoint (a record may carry none). */
export function addressesOk(sr: SignedRecord): boolean {
  return sr.record.addresses.every(isIpEndpoint);
}

/** Was this name forgotten (dead, past its retention) at this incarnation or later, recently? */
export function wasForgotten(s: State, name: string, inc: number): boolean {
  const f = s.forgotten.get(name);
  return f !== undefined && inc <= f.inc;
}

/** Drops the memory of forgotten names after a retention of their own (membership.ts forgetOld). */
export function forgetForgotten(s: State, now: number): void {
  for (const [name, f] of s.forgotten) {
    if (now - f.at < s.t.leftRetention) break; // oldest first
    s.forgotten.delete(name);
  }
}

/** Remembers that a dead name was forgotten at `inc`. */
export function noteForgotten(s: State, name: string, inc: number, now: number): void {
  s.forgotten.delete(name);
  s.forgotten.set(name, { inc, at: now });
}
