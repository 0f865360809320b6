/**
 * Maps what dockerode/Podman throw to typed outcomes at the edge, so the
 * rest of the runtime never looks at HTTP codes or errno strings:
 * 304 = already in that state, 404 = no such container/image/network,
 * ECONNREFUSED/ENOENT/... = Podman unreachable, ENOSPC = disk full,
 * setrlimit refusals = RLIMIT_DENIED (with the fix).
 */
import { errnoCode, errorMessage, HeptoError } from '../../shared/errors';
import { scrub } from '../../shared/log';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTSOCK', 'ERR_SOCKET_CLOSED']);

export function statusCodeOf(e: unknown): number | undefined {
  const c = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** Podman answered 304: the container is already started/stopped. */
export function isNotModified(e: unknown): boolean {
  return statusCodeOf(e) === 304;
}

export function isNotFound(e: unknown): boolean {
  return statusCodeOf(e) === 404;
}

export function isUnreachable(e: unknown): boolean {
  if (e instanceof HeptoError) return e.code === 'PODMAN_UNREACHABLE';
  const code = errnoCode(e);
  return code !== undefined && UNREACHABLE.has(code) && statusCodeOf(e) === undefined;
}

/** The message Podman put in its JSON error body, without dockerode's decorations. */
export function podmanMessage(e: unknown): string {
  const json = (e as { json?: { message?: unknown; cause?: unknown } } | null)?.json;
  const raw = json && typeof json.message === 'string' ? json.message : errorMessage(e);
  return scrub(raw.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim());
}

/** A HeptoError for anything Podman threw, with what to do. `what` says what the agent was doing. */
export function toHeptoError(e: unknown, what: string, socket: string): HeptoError {
  if (e instanceof HeptoError) return e;
  if (isUnreachable(e)) {
    return new HeptoError('PODMAN_UNREACHABLE', `Podman API unreachable at ${socket} (${errnoCode(e)}) while trying to ${what}`, {
      hint: `start it (systemctl enable --now podman.socket, or podman system service --time=0 unix://${socket}) or fix podman_socket in the config`,
      cause: e,
    });
  }
  const msg = podmanMessage(e);
  if (/setrlimit|RLIMIT_|setting rlimit/i.test(msg)) {
    return new HeptoError('RLIMIT_DENIED', `Podman could not apply the container's resource limits while trying to ${what}: ${msg}`, {
      hint: 'set "ulimits" in the config below the host hard limits, e.g. {"nofile":{"soft":1024,"hard":1024},"nproc":{"soft":1024,"hard":1024}}',
      cause: e,
    });
  }
  if (/no space left on device|ENOSPC|disk quota exceeded/i.test(msg) || errnoCode(e) === 'ENOSPC') {
    return new HeptoError('DISK_FULL', `disk full while trying to ${what}: ${msg}`, {
      hint: 'free space where Podman stores images and containers (/var/lib/containers) and under storage_base',
      cause: e,
    });
  }
  const code = statusCodeOf(e);
  return new HeptoError('INTERNAL', `Podman refused to ${what}${code ? ` (HTTP ${code})` : ''}: ${msg}`, { cause: e });
}
