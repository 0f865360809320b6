/**
 * The local control socket speaks newline-delimited JSON: one request line,
 * one response line. Only root can reach it (mode 0600 in a 0700 directory).
 */
export interface ControlRequest {
  cmd: 'status';
}

export type ControlResponse = { ok: true; data: unknown } | { ok: false; error: string };

/** Requests larger than this are refused: the socket only ever receives tiny commands. */
export const MAX_REQUEST_BYTES = 4096;
