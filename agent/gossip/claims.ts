/**
 * Claims that a member is suspect or dead (issue 14, attack 1). SWIM spreads
 * them unsigned, so a member holding the overlay key could declare any
 * healthy member dead. Here:
 *
 * - the accuser is the authenticated sender of the message that carried the
 *   claim (ctx.from), never the claim's own `f` field;
 * - another member's claim, dead or suspect, only starts (or confirms) a
 *   suspicion: the suspect is told at once and refutes, and only this agent's
 *   own suspicion deadline, with no word from the suspect, makes it dead
 *   (rules.ts);
 * - new suspicions are rate-limited per sender (a token bucket sized to the
 *   cluster), and a sender whose suspicions keep being refuted is distrusted
 *   for a while: its claims are ignored, and `problems` names it.
 */
import type { Ctx, State } from './state';
import { count, liveCount } from './state';

export interface ClaimLedger {
  /** Tokens left for new suspicions, refilled per sync interval. */
  tokens: number;
  refilledAt: number;
  /** When suspicions this sender started were refuted (recent ones only). */
  refuted: number[];
}

/** Refuted suspicions within conflictMemory after which a sender's claims are ignored and it is named in problems. */
export const DISTRUST_AFTER = 5;
/** Senders tracked at most (the membership's members, plus a margin); the oldest entry goes first. */
const MAX_LEDGERS = 4096;

/** Who makes a claim: whoever sent the message, authenticated by the transport; our own timers when none. */
export function accuserOf(s: State, ctx: Ctx): string {
  return ctx.from?.name ?? s.selfName;
}

function capacity(s: State): number {
  return Math.max(16, Math.ceil(liveCount(s) / 2));
}

function ledger(s: State, sender: string, now: number): ClaimLedger {
  let l = s.claims.get(sender);
  if (!l) {
    if (s.claims.size >= MAX_LEDGERS) s.claims.delete(s.claims.keys().next().value as string);
    l = { tokens: capacity(s), refilledAt: now, refuted: [] };
    s.claims.set(sender, l);
  }
  return l;
}

function recentRefuted(s: State, l: ClaimLedger, now: number): number {
  while (l.refuted.length > 0 && now - (l.refuted[0] as number) > s.t.conflictMemory) l.refuted.shift();
  return l.refuted.length;
}

/**
 * May `sender` start a new suspicion now? Always for this agent itself;
 * for another member, not while it is distrusted, and only with a token left.
 */
export function mayStartSuspicion(s: State, ctx: Ctx, sender: string): boolean {
  if (sender === s.selfName) return true;
  const l = ledger(s, sender, ctx.now);
  if (recentRefuted(s, l, ctx.now) >= DISTRUST_AFTER) {
    count(s, 'claim-from-distrusted');
    return false;
  }
  const cap = capacity(s);
  if (ctx.now - l.refilledAt >= s.t.syncInterval) {
    l.tokens = cap;
    l.refilledAt = ctx.now;
  }
  if (l.tokens < 1) {
    count(s, 'claims-limited');
    return false;
  }
  l.tokens--;
  return true;
}

/** May `sender` confirm a suspicion (one confirmation per sender per suspicion is counted anyway)? Not while distrusted. */
export function mayConfirm(s: State, ctx: Ctx, sender: string): boolean {
  if (sender === s.selfName) return true;
  const l = s.claims.get(sender);
  return !l || recentRefuted(s, l, ctx.now) < DISTRUST_AFTER;
}

/** The suspect refuted a suspicion that `starter` started. */
export function noteRefuted(s: State, ctx: Ctx, starter: string): void {
  if (starter === s.selfName) return;
  const l = ledger(s, starter, ctx.now);
  l.refuted.push(ctx.now);
  if (l.refuted.length > 64) l.refuted.shift();
  count(s, 'claim-refuted');
}

/** One problem per distrusted sender, naming it. */
export function claimProblems(s: State, now: number): string[] {
  const out: string[] = [];
  for (const [sender, l] of s.claims) {
    const n = recentRefuted(s, l, now);
    if (n < DISTRUST_AFTER) continue;
    out.push(
      `member "${sender}" keeps saying that live members are suspect or dead: ${n} of its claims were refuted by the members themselves in the last ${Math.round(s.t.conflictMemory / 60_000)} min, so its claims are ignored for now; ` +
        'if its agent is not broken (check its network and clock), remove it (hepto-agent remove)',
    );
  }
  return out;
}
