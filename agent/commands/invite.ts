/**
 * `hepto-agent invite [--ttl 24h] [--uses 1] [--node NAME] [--admin-key PATH]`:
 * signs an invitation (agent/admin/invitation.ts) with the admin key and
 * prints, on its last line, the command that joins a new machine with it.
 * The anchors in it are this machine's advertised gossip addresses and its
 * configured anchors. The rest of the line (where install.sh and the agent
 * tarball are served, the tarball's sha256, a wesher mirror) comes from
 * /etc/hepto/join.env, which the installer writes; without it, the line runs
 * install.sh from a checkout.
 */
import { promises as fs } from 'fs';
import { loadAdminKey } from '../admin/key';
import { encodeInvitation, makeInvitation } from '../admin/invitation';
import { requestStatus } from '../control/client';
import { loadConfig } from '../../shared/config/load';
import { HeptoError, errnoCode } from '../../shared/errors';
import type { StatusDoc } from '../../shared/status';
import { anchorEndpoints } from '../daemon/agent';
import { adminKeyPath } from './admin';
import { configPath, usageError, type Command } from './types';

export const JOIN_ENV_FILE = '/etc/hepto/join.env';
/** What join.env may set, in the order the join line gives them. */
const JOIN_VARS = ['HEPTO_AGENT_URL', 'HEPTO_AGENT_SHA256', 'HEPTO_WESHER_DOWNLOAD', 'HEPTO_WESHER_SHA256'] as const;

/** "24h", "30m", "7d", "90s": milliseconds; throws USAGE naming the flag. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!m) throw new HeptoError('USAGE', `${flag} "${text.slice(0, 32)}" is not a duration`, { hint: 'write a number and a unit: 90s, 30m, 24h or 7d' });
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** KEY='value' lines (the installer's shq quoting) into a map; unknown keys and other lines are ignored. */
export function parseJoinEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)='((?:[^']|'\\'')*)'$/.exec(line.trim());
    if (m) out.set(m[1] as string, (m[2] as string).replace(/'\\''/g, "'"));
  }
  return out;
}

function shq(v: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, "'\\''")}'`;
}

async function readJoinEnv(file: string): Promise<Map<string, string> | null> {
  try {
    return parseJoinEnv(await fs.readFile(file, 'utf8'));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null;
    throw new HeptoError('CONFIG_UNREADABLE', `cannot read ${file} (${errnoCode(e) ?? 'I/O error'})`, { hint: 'run as root; the installer writes it' });
  }
}

export const invite: Command = async (ctx) => {
  if (ctx.args.length > 0) throw usageError(`invite takes no arguments, got "${ctx.args.join(' ')}"`, 'invite [--ttl 24h] [--uses 1] [--node NAME]');
  const ttlMs = parseDuration(ctx.flags.ttl ?? '24h', '--ttl');
  const usesText = ctx.flags.uses ?? '1';
  if (!/^\d{1,4}$/.test(usesText)) throw new HeptoError('USAGE', `--uses "${usesText.slice(0, 16)}" is not a whole number`);
  const { key, warnings } = await loadAdminKey(adminKeyPath(ctx));
  for (const w of warnings) ctx.stderr(`warning: ${w}`);
  const { config } = await loadConfig(configPath(ctx));
  if (config.admin_pub !== key.pub) {
    throw new HeptoError(
      'ADMIN_KEY',
      config.admin_pub === null
        ? "this machine's config has no admin_pub: the anchors could not check the invitation"
        : `the admin key ${adminKeyPath(ctx)} is not the one this machine's admin_pub names`,
      {
        hint: 'invite from a machine whose admin_pub is the public half of this admin key',
      },
    );
  }
  const doc = (await requestStatus(config.control_socket)) as StatusDoc;
  const self = doc.members.find((m) => m.self);
  const anchors = [...new Set([...(self?.addresses ?? []), ...anchorEndpoints(config.anchors)])].slice(0, 16);
  const inv = makeInvitation(key, { anchors, ttlMs, uses: Number(usesText), ...(ctx.flags.node !== undefined ? { node: ctx.flags.node } : {}) }, Date.now());
  const token = encodeInvitation(inv);
  const joinEnvFile = ctx.env.HEPTO_JOIN_ENV ?? JOIN_ENV_FILE;
  const env = await readJoinEnv(joinEnvFile);
  const vars = JOIN_VARS.filter((k) => env?.get(k)).map((k) => `${k}=${shq(env!.get(k)!)}`);
  const install = env?.get('HEPTO_INSTALL_URL');
  const line = install
    ? `curl -sfL ${shq(install)} | ${[...vars, `HEPTO_INVITE=${token}`].join(' ')} sh -`
    : `${[...vars, `HEPTO_INVITE=${token}`].join(' ')} ./install.sh`;
  ctx.stdout(
    `invitation ${inv.body.id}: ${inv.body.uses} use${inv.body.uses > 1 ? 's' : ''}, ${inv.body.node ? `for node "${inv.body.node}"` : 'for any free node name'}, until ${new Date(inv.body.exp).toISOString()}, through ${anchors.join(', ') || 'no anchor'}`,
  );
  if (!install) ctx.stdout(`(${joinEnvFile} not found: the line runs install.sh from a checkout)`);
  ctx.stdout('anyone who holds the line below can use it until it is spent or expires: share it privately. On the new machine, from a root shell:');
  ctx.stdout(line);
  return 0;
};
