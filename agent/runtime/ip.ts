/**
 * Small, dependency-free IP address helpers for the runtime: parse addresses
 * and CIDRs into bytes, format them back (IPv6 in RFC 5952 short form), and
 * derive the network of an address. Throws HeptoError(CONFIG_INVALID) with
 * the offending text on bad input.
 */
import { HeptoError } from '../../shared/errors';

export interface Cidr {
  /** Address bytes (4 or 16). */
  bytes: Uint8Array;
  prefix: number;
}

function bad(what: string, text: string, why: string): HeptoError {
  return new HeptoError('CONFIG_INVALID', `${what} "${text}" is not valid: ${why}`, {
    hint: 'use an IPv4 address like 192.0.2.10/24 or an IPv6 address like 2001:db8::10/64',
  });
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  let s = text;
  let tail: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.') && lastColon >= 0) {
    tail = parseV4(s.slice(lastColon + 1));
    if (!tail) return null;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !rest) return null;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    all = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    all = head;
  }
  if (all.length !== 8) return null;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tail) out.set(tail, 12);
  return out;
}

/** Parses a bare IPv4 or IPv6 address (no prefix, no brackets). */
export function parseIp(text: string, what = 'address'): Uint8Array {
  const v = text.includes(':') ? parseV6(text) : parseV4(text);
  if (!v) throw bad(what, text, 'not an IPv4 or IPv6 address');
  return v;
}

/** Parses `addr/prefix`. */
export function parseCidr(text: string, what = 'network'): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw bad(what, text, 'missing /prefix');
  const bytes = parseIp(text.slice(0, slash), what);
  const p = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > bytes.length * 8) throw bad(what, text, `prefix must be 0-${bytes.length * 8}`);
  return { bytes, prefix: Number(p) };
}

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** One text form per address (RFC 5952 for IPv6), or null for anything that is not a bare IP address. */
export function canonicalIp(text: string): string | null {
  try {
    return formatIp(parseIp(text));
  } catch {
    return null;
  }
}

/** The network address of a CIDR (host bits cleared), as `net/prefix`. */
export function networkOf(c: Cidr): string {
  const out = new Uint8Array(c.bytes);
  for (let bit = c.prefix; bit < out.length * 8; bit++) out[bit >> 3] &= ~(0x80 >> (bit & 7));
  return `${formatIp(out)}/${c.prefix}`;
}

export function isV6(bytes: Uint8Array): boolean {
  return bytes.length === 16;
}

/** Strips the prefix of `addr/prefix` (and brackets of `[v6]`), returning the bare address. */
export function bareAddress(text: string): string {
  const noPrefix = text.split('/')[0];
  return noPrefix.replace(/^\[/, '').replace(/\]$/, '');
}

/** The host part of `host`, `host:port` or `[v6]:port`. */
export function hostOf(endpoint: string): string {
  const s = endpoint.trim();
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    return end > 0 ? s.slice(1, end) : s;
  }
  const colons = s.split(':').length - 1;
  if (colons === 1) return s.slice(0, s.indexOf(':'));
  return s; // bare host or bare IPv6
}
