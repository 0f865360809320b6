/**
 * Address parsing shared by config validation, the transport, the daemon and
 * the runtime. IPv6 first: literals may carry brackets (`[2001:db8::1]:7947`),
 * and a bare literal without brackets is accepted only when no port follows.
 */
import { isIP, isIPv4, isIPv6 } from 'net';
import { HeptoError } from '../errors';

export interface HostPort {
  /** Host name or IP literal, without brackets. */
  host: string;
  port: number;
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** True for an IPv4 or IPv6 literal (no brackets, no prefix). */
export function isIp(s: string): boolean {
  return isIP(s) !== 0;
}

/** 4, 6, or 0 for anything that is not an IP literal. */
export function ipFamily(s: string): 0 | 4 | 6 {
  return isIP(s) as 0 | 4 | 6;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** A DNS host name (RFC 1123, case-insensitive, optional trailing dot), not an IP literal. */
export function isHostname(s: string): boolean {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return false;
  // An all-numeric last label is a mistyped IPv4 address, not a name.
  return !/^[0-9]+$/.test(labels[labels.length - 1]);
}

/** Parses a decimal port 1..65535; null otherwise. */
export function parsePort(s: string): number | null {
  if (!/^[0-9]{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

function invalid(s: string, why: string): HeptoError {
  return new HeptoError('CONFIG_INVALID', `"${s}" is not a valid address: ${why}`, {
    hint: 'write host, host:port, an IP address, or [IPv6]:port',
  });
}

function checkHost(s: string, host: string): void {
  if (isIp(host)) return;
  if (/^[0-9.]+$/.test(host)) throw invalid(s, `${host} is not a valid IPv4 address`);
  if (!isHostname(host)) throw invalid(s, `${host} is neither an IP address nor a DNS name`);
}

/**
 * Parses `host`, `host:port`, `[v6]` or `[v6]:port`, and a bare IPv6 literal
 * (no port possible). Throws HeptoError CONFIG_INVALID saying what is wrong.
 */
export function parseHostPort(s: string, defaultPort: number): HostPort {
  if (typeof s !== 'string' || s.length === 0) throw invalid(String(s), 'it is empty');
  if (/\s/.test(s)) throw invalid(s, 'it contains whitespace');
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
    if (!m) throw invalid(s, 'a bracketed IPv6 address must look like [2001:db8::1]:7947');
    if (!isIPv6(m[1])) throw invalid(s, `${m[1]} inside brackets is not an IPv6 address`);
    if (m[2] === undefined) return { host: m[1], port: defaultPort };
    const port = parsePort(m[2]);
    if (port === null) throw invalid(s, `port "${m[2]}" must be a number from 1 to 65535`);
    return { host: m[1], port };
  }
  const colons = s.split(':').length - 1;
  if (colons === 0) {
    checkHost(s, s);
    return { host: s, port: defaultPort };
  }
  if (colons === 1) {
    const i = s.indexOf(':');
    const host = s.slice(0, i);
    const portText = s.slice(i + 1);
    if (host.length === 0) throw invalid(s, 'the host before ":" is empty');
    checkHost(s, host);
    const port = parsePort(portText);
    if (port === null) throw invalid(s, `port "${portText}" must be a number from 1 to 65535`);
    return { host, port };
  }
  if (isIPv6(s)) return { host: s, port: defaultPort };
  throw invalid(s, 'an IPv6 address with a port needs brackets, like [2001:db8::1]:7947');
}

/** `host:port`, with brackets around IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses `address/prefix` (IPv4 or IPv6, no zone); null if it is not one. */
export function parseCidr(s: string): Cidr | null {
  if (typeof s !== 'string') return null;
  const slash = s.lastIndexOf('/');
  if (slash <= 0) return null;
  const address = s.slice(0, slash);
  const prefixText = s.slice(slash + 1);
  if (address.includes('%') || !/^[0-9]{1,3}$/.test(prefixText)) return null;
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : 0;
  if (family === 0) return null;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return null;
  return { address, prefix, family };
}

/** Why `s` is not a valid `address/prefix`, for messages; null if it is valid. */
export function cidrProblem(s: string): string | null {
  if (parseCidr(s)) return null;
  const slash = s.lastIndexOf('/');
  if (slash < 0)
    return isIp(s)
      ? 'the prefix length is missing (write address/prefix, e.g. 2001:db8::1/64)'
      : 'not an address/prefix (e.g. 2001:db8::1/64 or 192.0.2.10/24)';
  const address = s.slice(0, slash);
  const prefixText = s.slice(slash + 1);
  if (!isIp(address) || address.includes('%')) return `${address} is not an IP address`;
  const max = isIPv4(address) ? 32 : 128;
  return `prefix "${prefixText}" must be a number from 0 to ${max}`;
}

/** The address of a valid Cidr as an unsigned integer (32 or 128 bits). */
function addressBits(address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  let text = address;
  let tail: bigint | null = null;
  // An embedded IPv4 tail (::ffff:192.0.2.1) stands for the last two groups.
  const v4 = /([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/.exec(text);
  if (v4) {
    tail = addressBits(v4[1], 4);
    text = text.slice(0, v4.index) + '0:0';
  }
  const groups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  let all: string[];
  if (text.includes('::')) {
    const [head, rest] = text.split('::');
    const h = groups(head);
    const r = groups(rest);
    all = [...h, ...new Array<string>(8 - h.length - r.length).fill('0'), ...r];
  } else {
    all = groups(text);
  }
  const value = all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  return tail === null ? value : (value & ~0xffffffffn) | tail;
}

/**
 * Whether two CIDRs share any address (host bits ignored, so an interface
 * address like 192.0.2.10/24 stands for its whole network). Different
 * families never overlap.
 */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shift = BigInt((a.family === 4 ? 32 : 128) - Math.min(a.prefix, b.prefix));
  return addressBits(a.address, a.family) >> shift === addressBits(b.address, b.family) >> shift;
}
