import { HeptoError } from '../../shared/errors';
import type { LogFormat, LogLevel } from '../../shared/log';

/** What every command receives: parsed options and where to print. */
export interface CommandContext {
  /** Positional arguments after the command words. */
  args: string[];
  /** Parsed --flags (see agent/cli.ts for the declared set). */
  flags: {
    config?: string;
    json?: boolean;
    /** --mesh (status). */
    mesh?: boolean;
    node?: string;
    /** --admin-key PATH (admin commands). */
    adminKey?: string;
    /** --identity ed25519:KEY (admit). */
    identity?: string;
    /** --all-current (admit). */
    allCurrent?: boolean;
    /** --ttl and --uses (invite). */
    ttl?: string;
    uses?: string;
    /** --switch-in and --grace (rotate-keys). */
    switchIn?: string;
    grace?: string;
    logFormat: LogFormat;
    logLevel?: LogLevel;
  };
  env: NodeJS.ProcessEnv;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** A command resolves to the process exit code. Expected user errors throw HeptoError. */
export type Command = (ctx: CommandContext) => Promise<number>;

/** Config path: --config, else HEPTO_CONFIG, else /etc/hepto/hepto.json. */
export function configPath(ctx: CommandContext): string {
  return ctx.flags.config ?? ctx.env.HEPTO_CONFIG ?? '/etc/hepto/hepto.json';
}

/** A command line the command cannot take: what is wrong, and its usage line as the hint. */
export function usageError(message: string, usage: string): HeptoError {
  return new HeptoError('USAGE', message, { hint: `type hepto-agent ${usage}` });
}

/** An admin command on a machine whose config has no admin_pub; `why` ends "so …". */
export function noAdminPubError(why: string): HeptoError {
  return new HeptoError('ADMIN_KEY', `this machine's config has no admin_pub, ${why}`, {
    hint: "put admin_pub in every machine's config first (docs/trust.md: pinned names)",
  });
}
