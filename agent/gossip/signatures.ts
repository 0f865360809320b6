/**
 * What a peer's signatures may cost us (issue 14, item 6). Checking one
 * ed25519 signature takes about 84 µs, and a member holding the key can send
 * records by the thousand. Each sender (the authenticated ctx.from) gets a
 * budget of checks per sync interval, sized to the cluster so that a full
 * anti-entropy reply still fits; past it, its records wait for a later
 * message. A signature that does not verify is never an honest mistake
 * (records travel unchanged from their owner, and members pass on only what
 * they checked), so the sender's connection is dropped and the refusal shows
 * in status (GossipNode, on the `bad-signature` event).
 */
import type { Ctx, State } from './state';
import { count, emit, liveCount } from './state';

export interface VerifyBudget {
  left: number;
  refilledAt: number;
}

/** Senders tracked at most; the oldest entry goes first. */
const MAX_BUDGETS = 4096;

/** Checks a sender may cause per sync interval: a whole cluster's records twice over, and never fewer than 2,048. */
export function verifyCapacity(s: State): number {
  return Math.max(2048, 2 * liveCount(s));
}

/** May the sender of this message make us check one more signature? Always for our own work. */
export function spendVerification(s: State, ctx: Ctx): boolean {
  const sender = ctx.from?.name;
  if (sender === undefined || sender === s.selfName) return true;
  let b = s.verifyBudgets.get(sender);
  if (!b || ctx.now - b.refilledAt >= s.t.syncInterval) {
    if (!b && s.verifyBudgets.size >= MAX_BUDGETS) s.verifyBudgets.delete(s.verifyBudgets.keys().next().value as string);
    b = { left: verifyCapacity(s), refilledAt: ctx.now };
    s.verifyBudgets.set(sender, b);
  }
  if (b.left <= 0) {
    count(s, 'verify-budget-spent');
    return false;
  }
  b.left--;
  return true;
}

/** A signature that does not verify: counted, and the sender (if a peer) is to be cut off and reported. */
export function badSignature(s: State, ctx: Ctx, what: string): void {
  count(s, 'bad-signature');
  const from = ctx.from;
  if (from && from.name !== s.selfName) emit(ctx, 'bad-signature', from.name, 0, `${from.remote} sent ${what} with a bad signature`);
}
