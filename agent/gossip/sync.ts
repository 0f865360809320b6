/**
 * Anti-entropy. At rest two members compare one 16-character hash of their
 * digests (name → incarnation + state); only when it differs do they exchange
 * the digest and then pull/push just the entries that differ:
 *   A → B  h{hash, x, r}     (B's hash equal: nothing more; x: removals.ts, r: rotations.ts)
 *   B → A  d{digest, self}   (also how a joiner or a rejoiner starts)
 *   A → B  y{entries B lacks or holds older, names A wants}
 *   B → A  y{wanted entries, nothing wanted}
 */
import type { DigestEntry, StateCode, SyncDigestMsg, SyncHashMsg, Update } from './messages';
import { LIMITS, updateSize } from './messages';
import { removalsHash } from './removals';
import { rotationId } from './rotations';
import type { Ctx, Entry, State } from './state';
import { STATE_CODE, internalError, selfEntry } from './state';
import type { Destination } from '../net/transport';
import { applyUpdate, refute } from './rules';

/**
 * Ids of our entries in name order, kept until an entry is added or removed
 * (state changes do not reorder it): a digest is built for every join and
 * every sync that finds a difference, and sorting 10,000 names each time was
 * most of it.
 */
function sortedIds(s: State): readonly number[] {
  if (s.sortedIds === null) {
    const t = s.entries;
    const names = t.index.names;
    const ids: number[] = [];
    for (let id = 0, end = t.end(); id < end; id++) if (t.has(id)) ids.push(id);
    ids.sort((a, b) => ((names[a] as string) < (names[b] as string) ? -1 : (names[a] as string) > (names[b] as string) ? 1 : 0));
    s.sortedIds = ids;
  }
  return s.sortedIds;
}

export function digestOf(s: State): DigestEntry[] {
  const t = s.entries;
  return sortedIds(s).map((id) => [t.index.names[id] as string, t.incOf[id] as number, t.stateCode(id)]);
}

/**
 * Our digest as `d` messages of at most about messageBytes each (a frame
 * holds 1 MiB: at ~16,000 names one digest no longer fitted, and
 * anti-entropy stopped). One chunk, as almost always, is the plain `d` of
 * before; several carry `b: [after, through]`, the name range each covers
 * ('' = open end), so the receiver pushes back only what it holds in that
 * range. The first chunk carries our own record.
 */
export function digestMessages(s: State): SyncDigestMsg[] {
  const d = digestOf(s);
  // ["name",inc,st], in JSON
  const chunks = packed(d, (e) => e[0].length + String(e[1]).length + 10, s.t.messageBytes, LIMITS.digest);
  const own: Update[] = [{ k: 'a', r: selfEntry(s).signed }];
  if (chunks.length === 1) return [{ t: 'd', d, u: own }];
  return chunks.map((c, i) => {
    const after = i === 0 ? '' : ((chunks[i - 1] as DigestEntry[]).at(-1) as DigestEntry)[0];
    const through = i === chunks.length - 1 ? '' : (c.at(-1) as DigestEntry)[0];
    const m: SyncDigestMsg = { t: 'd', d: c, b: [after, through] };
    if (i === 0) m.u = own;
    return m;
  });
}

/**
 * `items` in order, cut into runs of at most `budget` (by `sizeOf`) and
 * `maxCount` items; an item larger than the budget goes alone. Always at
 * least one run (maybe empty).
 */
function packed<T>(items: T[], sizeOf: (x: T) => number, budget: number, maxCount = Infinity): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let used = 0;
  for (const x of items) {
    const size = sizeOf(x);
    if (cur.length > 0 && (used + size > budget || cur.length >= maxCount)) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(x);
    used += size;
  }
  out.push(cur);
  return out;
}

/** Whether a name falls in a digest chunk's range (sync.ts digestMessages); no range: the whole digest. */
function inBounds(name: string, b: [string, string] | undefined): boolean {
  return !b || ((b[0] === '' || name > b[0]) && (b[1] === '' || name <= b[1]));
}

/** The digest's hash (MemberTable.digest, kept up to date by every change): equal for equal digests. */
export function digestHash(s: State): string {
  const d = s.entries.digest;
  const out = Buffer.alloc(4 * d.length);
  d.forEach((lane, l) => out.writeUInt32LE(lane, 4 * l));
  return out.toString('base64');
}

/** The sync hash message: our digest's hash, the hash of the removals we hold (removals.ts) and our newest rotation (rotations.ts). */
export function syncHashMessage(s: State): SyncHashMsg {
  const m: SyncHashMsg = { t: 'h', h: digestHash(s) };
  const x = removalsHash(s);
  if (x !== undefined) m.x = x;
  const r = rotationId(s);
  if (r !== undefined) m.r = r;
  return m;
}

/** Orders two (incarnation, state) claims: > 0 when a is newer. */
function compare(ai: number, ast: StateCode, bi: number, bst: StateCode): number {
  return ai !== bi ? ai - bi : ast - bst;
}

/** What to send for one held entry: its signed record, with the state on top. */
export function itemsFor(s: State, e: Entry): Update[] {
  const name = e.signed.record.name;
  if (e.state === 'left') {
    if (!e.leftSig) return [{ k: 'a', r: e.signed, o: 'd', f: s.selfName }];
    if (e.inc === e.signed.incarnation) return [{ k: 'a', r: e.signed, o: 'l', g: e.leftSig }];
    // Left at an incarnation whose record we never got: the record as dead, then the signed leave.
    return [
      { k: 'a', r: e.signed, o: 'd', f: s.selfName },
      { k: 'l', n: name, i: e.inc, g: e.leftSig },
    ];
  }
  if (e.state === 'suspect') return [{ k: 'a', r: e.signed, o: 's', f: s.selfName }];
  if (e.state === 'dead') return [{ k: 'a', r: e.signed, o: 'd', f: s.selfName }];
  return [{ k: 'a', r: e.signed }];
}

/**
 * Compares a peer's digest with ours. `push`: entries the peer lacks or holds
 * older (except left members it never knew); `want`: names where the peer is
 * newer (except left members we never knew). A claim that we ourselves are
 * suspect or dead at our incarnation is refuted on the spot.
 */
export function compareDigest(s: State, ctx: Ctx, theirs: DigestEntry[], bounds?: [string, string]): { push: Update[]; want: string[] } {
  const t = s.entries;
  // Names already compared: a mark per table id, a Set only for names we hold no entry for.
  const seen = new Uint8Array(t.end());
  const seenOther = new Set<string>();
  const want: string[] = [];
  const pushEntries: Entry[] = [];
  for (const [name, inc, st] of theirs) {
    const id = t.index.find(name);
    if (id !== undefined && id < seen.length) {
      if (seen[id]) continue;
      seen[id] = 1;
    } else {
      if (seenOther.has(name)) continue;
      seenOther.add(name);
    }
    const e = id !== undefined && t.has(id) ? t.at(id) : undefined;
    if (!e) {
      if (st !== 3) want.push(name);
      continue;
    }
    const c = compare(e.inc, STATE_CODE[e.state], inc, st);
    if (c > 0) pushEntries.push(e);
    else if (c < 0) {
      if (name === s.selfName && inc === e.inc && (st === 1 || st === 2)) refute(s, ctx, inc, 'a peer holds us suspect or dead');
      else want.push(name);
    }
  }
  for (let id = 0; id < seen.length; id++) {
    if (!seen[id] && t.has(id) && t.stateCode(id) !== STATE_CODE.left && inBounds(t.index.names[id] as string, bounds)) pushEntries.push(t.at(id));
  }
  const push: Update[] = [];
  for (const e of pushEntries) push.push(...itemsFor(s, e));
  return { push, want };
}

/**
 * Sends updates as sync replies within the byte budget. Every chunk is a `y`
 * (so sync traffic is never mistaken for gossip); only the last carries the
 * names we want back.
 */
export function sendChunked(ctx: Ctx, to: Destination, updates: Update[], budget: number, want: string[]): void {
  // The names we want, in slices that fit the budget too (a 16,000-name want list of long names is a megabyte).
  const wants = packed(want, (name) => name.length + 3, budget, LIMITS.wanted);
  for (const extra of wants.slice(0, -1)) ctx.send.push({ to, msg: { t: 'y', u: [], w: extra } });
  want = wants[wants.length - 1] as string[];
  const chunks = packed(updates, updateSize, budget);
  chunks.forEach((c, i) => {
    ctx.send.push({ to, msg: { t: 'y', u: c, w: i === chunks.length - 1 ? want : [] } });
  });
}

export function applyAll(s: State, ctx: Ctx, updates: Update[] | undefined, viaSync: boolean): void {
  if (!updates) return;
  for (const u of updates) {
    try {
      applyUpdate(s, ctx, u, { viaSync });
    } catch (e) {
      internalError(s, 'apply-update', e);
    }
  }
}
