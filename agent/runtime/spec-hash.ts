/**
 * The spec hash carried in the `io.hepto.spec-hash` label. It covers the
 * canonical container spec, so any change recreates the container, with two
 * adjustments:
 * - secret values (the overlay key in wesher's env, the k3s token file) are
 *   replaced by a hash of them, so a key change also recreates, yet the
 *   label reveals nothing;
 * - the wesher join list is left out: a membership change alone must not
 *   recreate a running wesher (it is refreshed when wesher restarts).
 */
import { createHash } from 'crypto';
import { canonicalJson } from '../../shared/canonical-json';

export const VOLATILE_ENV = ['WESHER_JOIN'];
export const HASH_LABEL = 'io.hepto.spec-hash';
/**
 * On containers with live files (specs.ts SecretFile.live: a k3s agent's
 * token file): the spec hash with those files' content left out. A container
 * whose base hash is the wanted one differs at most in such a file, which
 * the supervisor rewrites in place instead of recreating the container.
 * Not itself part of any hash.
 */
export const BASE_HASH_LABEL = 'io.hepto.spec-hash-base';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `secretFiles`: path → content of secret files the container reads; only a hash of each enters. */
export function specHash(
  create: { Env?: string[]; Labels?: Record<string, string> } & Record<string, unknown>,
  secretEnv: string[],
  secretFiles: Record<string, string> = {},
): string {
  const env = (create.Env ?? [])
    .filter((e) => !VOLATILE_ENV.includes(e.slice(0, e.indexOf('='))))
    .map((e) => {
      const eq = e.indexOf('=');
      const key = e.slice(0, eq);
      return secretEnv.includes(key) ? `${key}=sha256:${sha256(`hepto-spec-secret\0${key}\0${e.slice(eq + 1)}`)}` : e;
    });
  const labels = Object.fromEntries(Object.entries(create.Labels ?? {}).filter(([k]) => k !== HASH_LABEL && k !== BASE_HASH_LABEL && k !== 'io.hepto.join'));
  const files = Object.fromEntries(Object.entries(secretFiles).map(([p, c]) => [p, `sha256:${sha256(`hepto-spec-secret\0${p}\0${c}`)}`]));
  const input = Object.keys(files).length > 0 ? { ...create, Env: env, Labels: labels, SecretFiles: files } : { ...create, Env: env, Labels: labels };
  return sha256(canonicalJson(input)).slice(0, 32);
}
