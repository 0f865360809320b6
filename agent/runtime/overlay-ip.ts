/**
 * The overlay IP wesher gives a node, computed the way wesher computes it, so
 * the agent can publish it, tell k3s its node IP and spot collisions before
 * wesher starts: FNV-1a 128 of the name; with n = host bits / 8, the last n
 * bytes of the overlay prefix are replaced by the last n bytes of the hash.
 * The prefix length must be a multiple of 8 (wesher refuses others too).
 */
import { HeptoError } from '../../shared/errors';
import { formatIp, parseCidr } from './ip';

const FNV128_OFFSET = 0x6c62272e07bb014262b821756295c58dn;
const FNV128_PRIME = (1n << 88n) + 0x13bn;
const MASK128 = (1n << 128n) - 1n;

/** 128-bit FNV-1a of the UTF-8 bytes of `text`, big-endian (16 bytes). */
export function fnv1a128(text: string): Uint8Array {
  let h = FNV128_OFFSET;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * FNV128_PRIME) & MASK128;
  }
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(h & 0xffn);
    h >>= 8n;
  }
  return out;
}

export function overlayIp(name: string, overlayNet: string): string {
  const net = parseCidr(overlayNet, 'overlay_net');
  const size = net.bytes.length * 8;
  if (net.prefix % 8 !== 0) {
    throw new HeptoError('CONFIG_INVALID', `overlay_net "${overlayNet}" has a /${net.prefix} prefix; wesher needs a multiple of 8`, {
      hint: 'use a /8, /16 or /24 for IPv4 (a multiple of 8 for IPv6)',
    });
  }
  const hash = fnv1a128(name);
  const ip = new Uint8Array(net.bytes);
  const n = (size - net.prefix) / 8;
  for (let i = 1; i <= n; i++) ip[ip.length - i] = hash[hash.length - i];
  return formatIp(ip);
}
