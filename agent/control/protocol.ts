/**
 * The local control socket speaks newline-delimited JSON: one request line,
 * one response line. Only root can reach it (mode 0600 in a 0700 directory).
 */
export type ControlRequest =
  | { cmd: 'status' }
  /** Every member with its full identity key and admission time (admit --all-current). */
  | { cmd: 'members' }
  /** One admission signed by `hepto-agent admit` (agent/admin/admission.ts). */
  | { cmd: 'admit'; admission: unknown }
  /** One removal signed by `hepto-agent remove`. */
  | { cmd: 'remove'; removal: unknown }
  /** One member's box of a key rotation signed by `hepto-agent rotate-keys` (agent/admin/rotation.ts). */
  | { cmd: 'rotate'; box: unknown };

/** One member as `members` answers. */
export interface MemberIdentity {
  name: string;
  state: string;
  /** base64, as in records. */
  id_pub: string;
  /** ms since the epoch, or null: the member shows no admission. */
  admitted_at: number | null;
}

export interface AdmitAnswer {
  result: 'admitted' | 'removed' | 'kept' | 'already' | 'refused';
  why?: string;
}

export type ControlResponse = { ok: true; data: unknown } | { ok: false; error: string };

/** Requests larger than this are refused: the socket only ever receives tiny commands. */
export const MAX_REQUEST_BYTES = 4096;
