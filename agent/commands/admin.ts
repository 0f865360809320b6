import { createAdminKey, loadAdminKey, DEFAULT_ADMIN_KEY_FILE } from '../admin/key';
import { HeptoError } from '../../shared/errors';
import { usageError, type Command, type CommandContext } from './types';

/** --admin-key, else /etc/hepto/admin.key. */
export function adminKeyPath(ctx: CommandContext): string {
  const file = ctx.flags.adminKey ?? DEFAULT_ADMIN_KEY_FILE;
  if (file.trim() === '') throw new HeptoError('USAGE', '--admin-key needs a path', { hint: `leave it out for ${DEFAULT_ADMIN_KEY_FILE}` });
  return file;
}

function noArgs(ctx: CommandContext, usage: string): void {
  if (ctx.args.length > 0) throw usageError(`${usage.split(' [')[0]} takes no arguments, got "${ctx.args.join(' ')}"`, usage);
}

/**
 * `hepto-agent admin init [--admin-key PATH]`: makes the cluster's admin key
 * pair and prints its public half, in admin_pub's text form, on the last
 * line (scripts take `tail -n 1`, or run `admin pub` afterwards). Refuses to
 * overwrite an existing key (exit 1). The private key is never printed.
 */
export const adminInit: Command = async (ctx) => {
  noArgs(ctx, 'admin init [--admin-key PATH]');
  const file = adminKeyPath(ctx);
  const key = await createAdminKey(file, Date.now());
  ctx.stdout(
    `created the cluster's admin key in ${file} (mode 0600): keep it secret and keep a copy offline; it admits machines under their names (hepto-agent admit)`,
  );
  ctx.stdout('put the next line in every machine\'s config (/etc/hepto/hepto.json) as "admin_pub", then restart hepto-agent there:');
  ctx.stdout(key.pub);
  return 0;
};

/** `hepto-agent admin pub [--admin-key PATH]`: the public half of an existing admin key, one line. */
export const adminPub: Command = async (ctx) => {
  noArgs(ctx, 'admin pub [--admin-key PATH]');
  const { key, warnings } = await loadAdminKey(adminKeyPath(ctx));
  for (const w of warnings) ctx.stderr(`warning: ${w}`);
  ctx.stdout(key.pub);
  return 0;
};
