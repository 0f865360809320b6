/**
 * One error class with stable codes. Expected user errors carry a `hint`
 * (what to do) and are printed as one line without a stack trace.
 * Every code is documented in docs/errors.md.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'INVENTORY_INVALID'
  | 'USAGE'
  | 'AGENT_NOT_RUNNING'
  | 'PEER_AUTH_FAILED'
  | 'PEER_UNREACHABLE'
  | 'ADDRESS_INVALID'
  | 'TRANSPORT_STOPPED'
  | 'FRAME_REJECTED'
  | 'NAME_CONFLICT'
  | 'NOT_ADMITTED'
  | 'ENROL_REFUSED'
  | 'PODMAN_UNREACHABLE'
  | 'IMAGE_MISSING'
  | 'IMAGE_BUILD_FAILED'
  | 'WESHER_DOWNLOAD_FAILED'
  | 'WESHER_CHECKSUM_MISMATCH'
  | 'DISK_FULL'
  | 'RLIMIT_DENIED'
  | 'STATE_UNWRITABLE'
  | 'LINK_FAILED'
  | 'ADMIN_KEY'
  | 'INTERNAL';

export class HeptoError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Extra lines (for example one per config problem). */
  readonly details: string[];

  constructor(code: ErrorCode, message: string, opts: { hint?: string; details?: string[]; cause?: unknown } = {}) {
    super(message);
    this.name = 'HeptoError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details ?? [];
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
  }

  /** The one-line (plus details) form shown to people. */
  describe(): string {
    const head = this.hint ? `${this.message} (${this.hint})` : this.message;
    return [head, ...this.details].join('\n');
  }
}

export function isHeptoError(e: unknown): e is HeptoError {
  return e instanceof HeptoError;
}

/** Best-effort message of anything thrown, never a stack. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Node system error code (ENOENT, EACCES, ...) of anything thrown, if any. */
export function errnoCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}
