/**
 * wesher publishes static release binaries (wesher-amd64, wesher-arm64,
 * wesher-arm) and a `wesher.sha256sums` file, but no container image. The
 * agent therefore builds `localhost/hepto/wesher:<version>` itself: it
 * downloads the binary for this machine's architecture, verifies it, and
 * builds through the Podman API an image whose only content is `/wesher`
 * (mode 0755) as its ENTRYPOINT, labelled with the binary's sha256.
 *
 * Verification (what `fetchWesherRelease` accepts):
 * - The sums file is always downloaded first (so a wrong base URL fails
 *   fast, before 10+ MB of binary) and must be reachable.
 * - Without a pin, the sums file must have a line for `wesher-<arch>` and
 *   the binary must match it. Over plain http this guards against
 *   corruption only; a pin is what guards against a tampering network.
 * - With a pin (`pinnedSha256`, the hash of the binary for this arch), the
 *   binary must match the pin. If the sums file also lists the binary, its
 *   hash must equal the pin too (a disagreement is an error naming both
 *   sources: one of them is wrong and a person should look); if the sums
 *   file has no line for it, the pin alone is enough (e.g. a mirror that
 *   publishes only the binaries one needs, with a sums file of its own).
 */
import { createHash } from 'crypto';
import { DEFAULT_WESHER_IMAGE, WESHER_VERSION } from '../../shared/config/images';
import { HeptoError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { DownloadError, httpGet, type HttpGet } from './download';
import type { PodmanClient } from './podman-client';
import { tarArchive } from './tar';

export { WESHER_VERSION };
/** Upstream's release download directory for WESHER_VERSION (the wesher_download default). */
/** The image the agent builds from that release (the images.wesher default). */
export const WESHER_IMAGE = DEFAULT_WESHER_IMAGE;
/** Image label holding the sha256 of the /wesher binary inside. */
export const WESHER_SHA_LABEL = 'io.hepto.wesher.sha256';
export const SUMS_FILE = 'wesher.sha256sums';

export const MAX_BINARY_BYTES = 64 * 1024 * 1024;
export const MAX_SUMS_BYTES = 64 * 1024;
/** For both files together, redirects included. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 300_000;

const DOWNLOAD_HINT = 'check wesher_download (the release base URL) and the network, or set images.wesher to an image you built or mirrored yourself';
const CHECKSUM_HINT =
  'the download is corrupt, or the release, mirror or pin is wrong: check wesher_download and wesher_sha256, or set images.wesher to an image you built or mirrored yourself';

/** wesher's release name for a Node.js architecture (process.arch). */
export function releaseArch(nodeArch: string = process.arch): string {
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    case 'arm':
      return 'arm';
    default:
      throw new HeptoError(
        'WESHER_DOWNLOAD_FAILED',
        `wesher publishes no release binary for this machine's architecture (${nodeArch}); there are only amd64, arm64 and arm`,
        {
          hint: 'build wesher for this architecture yourself, put it in an image as its entrypoint, and set images.wesher to that image',
        },
      );
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * `sha256sum` output: `<64 hex>  <name>` (or ` *<name>` in binary mode) per
 * line. Names are reduced to their last path component. A name listed twice
 * with different hashes maps to null (ambiguous). Other lines are ignored.
 */
export function parseSha256Sums(text: string): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const raw of text.split('\n')) {
    const m = /^\s*([0-9a-fA-F]{64}) [ *](.+?)\s*$/.exec(raw.replace(/\r$/, ''));
    if (!m) continue;
    const name = m[2].split('/').pop()!;
    const hash = m[1].toLowerCase();
    const seen = out.get(name);
    out.set(name, seen === undefined || seen === hash ? hash : null);
  }
  return out;
}

export interface FetchWesherOptions {
  /** The release directory (config wesher_download), or a mirror of it (http or https). */
  baseUrl: string;
  /** wesher's arch name (releaseArch()): amd64, arm64 or arm. */
  arch: string;
  /** sha256 (64 hex) the binary for `arch` must have, or null to trust the sums file. */
  pinnedSha256: string | null;
  /** HTTP getter; the node http/https one by default (tests and mirrors may inject). */
  fetch?: HttpGet;
  /** Size cap for the binary (default 64 MiB); the sums file is capped at 64 KiB. */
  maxBytes?: number;
  /** For both downloads together (default 300 s). */
  timeoutMs?: number;
  /** Binary download progress: bytes so far, announced total if any. */
  onProgress?: (bytes: number, total: number | null) => void;
}

export interface WesherRelease {
  binary: Buffer;
  sha256: string;
  /** The URL the binary was asked for. */
  url: string;
}

function joinUrl(base: string, file: string): string {
  return `${base.replace(/\/+$/, '')}/${file}`;
}

function downloadFailed(e: unknown, url: string, what: string, timeoutMs: number): HeptoError {
  let reason: string;
  if (e instanceof DownloadError && e.kind === 'timeout')
    reason = `not finished within ${timeoutMs < 10_000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`} (the limit for the sums file and binary together)`;
  else if (e instanceof DownloadError && e.kind === 'too-large') reason = `refused: ${e.message}`;
  else reason = e instanceof Error ? e.message : String(e);
  return new HeptoError('WESHER_DOWNLOAD_FAILED', `could not download ${what} from ${url}: ${reason}`, { hint: DOWNLOAD_HINT, cause: e });
}

/** Downloads and verifies the wesher release binary for `arch` (see the file comment for the rules). */
export async function fetchWesherRelease(opts: FetchWesherOptions): Promise<WesherRelease> {
  const get = opts.fetch ?? httpGet;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const file = `wesher-${opts.arch}`;
  const sumsUrl = joinUrl(opts.baseUrl, SUMS_FILE);
  const binUrl = joinUrl(opts.baseUrl, file);
  let pin: string | null = null;
  if (opts.pinnedSha256 !== null && opts.pinnedSha256 !== undefined) {
    pin = opts.pinnedSha256.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(pin)) {
      throw new HeptoError('CONFIG_INVALID', `the pinned sha256 for ${file} is not 64 hex digits`, {
        hint: 'set wesher_sha256 to the output of sha256sum for that binary, or leave it unset',
      });
    }
  }

  let sumsText: string;
  try {
    sumsText = (await get(sumsUrl, { maxBytes: MAX_SUMS_BYTES, deadline })).toString('utf8');
  } catch (e) {
    throw downloadFailed(e, sumsUrl, `the wesher ${opts.arch} checksums`, timeoutMs);
  }
  const listed = parseSha256Sums(sumsText).get(file);
  if (listed === null) {
    throw new HeptoError('WESHER_CHECKSUM_MISMATCH', `${sumsUrl} lists two different sha256 hashes for ${file}`, { hint: CHECKSUM_HINT });
  }
  if (listed === undefined && pin === null) {
    throw new HeptoError('WESHER_CHECKSUM_MISMATCH', `${sumsUrl} has no line for ${file}, so ${binUrl} cannot be verified`, { hint: CHECKSUM_HINT });
  }
  if (listed !== undefined && pin !== null && listed !== pin) {
    // Fail before the big download: one of the two sources is wrong.
    throw new HeptoError('WESHER_CHECKSUM_MISMATCH', `${sumsUrl} lists sha256 ${listed} for ${file}, but the pinned hash (wesher_sha256) is ${pin}`, {
      hint: CHECKSUM_HINT,
    });
  }

  let binary: Buffer;
  try {
    binary = await get(binUrl, { maxBytes: opts.maxBytes ?? MAX_BINARY_BYTES, deadline, onProgress: opts.onProgress });
  } catch (e) {
    throw downloadFailed(e, binUrl, `the wesher ${opts.arch} binary`, timeoutMs);
  }
  const sha256 = sha256Hex(binary);
  const expected = pin ?? listed!;
  if (sha256 !== expected) {
    const source = pin !== null ? 'the pinned hash (wesher_sha256)' : sumsUrl;
    throw new HeptoError('WESHER_CHECKSUM_MISMATCH', `${binUrl} has sha256 ${sha256}, but ${source} says ${expected}`, { hint: CHECKSUM_HINT });
  }
  return { binary, sha256, url: binUrl };
}

/** The Dockerfile of the wesher image (FROM scratch: the binary and nothing else). */
export function wesherDockerfile(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
  return ['FROM scratch', 'COPY wesher /wesher', `LABEL ${WESHER_SHA_LABEL}="${sha256}"`, 'ENTRYPOINT ["/wesher"]', ''].join('\n');
}

/** The build context: Dockerfile and the binary as `wesher` (0755). */
export function wesherBuildContext(binary: Buffer, sha256: string = sha256Hex(binary)): Buffer {
  return tarArchive([
    { name: 'Dockerfile', data: Buffer.from(wesherDockerfile(sha256)), mode: 0o644 },
    { name: 'wesher', data: binary, mode: 0o755 },
  ]);
}

/**
 * Builds `ref` from `binary` through the Podman API: `/wesher` (0755) as the
 * entrypoint, nothing else, labelled io.hepto.wesher.sha256. Build output
 * lines go to `onProgress`. Throws IMAGE_BUILD_FAILED (or PODMAN_UNREACHABLE,
 * DISK_FULL) from PodmanClient.build.
 */
export async function buildWesherImage(client: PodmanClient, ref: string, binary: Buffer, onProgress?: (line: string) => void): Promise<{ sha256: string }> {
  const sha256 = sha256Hex(binary);
  await client.build(wesherBuildContext(binary, sha256), { tag: ref }, onProgress);
  return { sha256 };
}

export interface EnsureWesherImageOptions extends Omit<FetchWesherOptions, 'arch'> {
  client: PodmanClient;
  /** Default WESHER_IMAGE. */
  ref?: string;
  /** Default releaseArch(). */
  arch?: string;
  logger?: Logger;
}

/**
 * Builds the wesher image unless `ref` is already there. With a pin, an image
 * whose io.hepto.wesher.sha256 label differs from the pin is rebuilt (the pin
 * changed); without one, any image under `ref` is kept.
 */
export async function ensureWesherImage(opts: EnsureWesherImageOptions): Promise<{ built: boolean; sha256: string | null }> {
  const ref = opts.ref ?? WESHER_IMAGE;
  const labels = await opts.client.imageLabels(ref);
  const pin = opts.pinnedSha256?.trim().toLowerCase() ?? null;
  if (labels && (pin === null || labels[WESHER_SHA_LABEL] === pin)) return { built: false, sha256: labels[WESHER_SHA_LABEL] ?? null };
  const arch = opts.arch ?? releaseArch();
  const log = opts.logger;
  log?.info('downloading wesher release', { version: WESHER_VERSION, arch, base: opts.baseUrl, pinned: pin !== null });
  let lastTenth = -1;
  const release = await fetchWesherRelease({
    ...opts,
    arch,
    onProgress: (bytes, total) => {
      opts.onProgress?.(bytes, total);
      // A quarter at a time: enough to see it move in the journal, without a line per chunk.
      const tenth = total ? Math.floor((bytes * 4) / total) : -1;
      if (log && tenth > lastTenth) {
        lastTenth = tenth;
        log.info('wesher download progress', { bytes, total: total ?? undefined });
      }
    },
  });
  log?.info('wesher release verified, building image', { image: ref, sha256: release.sha256, bytes: release.binary.length });
  await buildWesherImage(opts.client, ref, release.binary, (line) => log?.debug('wesher image build', { line }));
  log?.info('wesher image built', { image: ref, sha256: release.sha256 });
  return { built: true, sha256: release.sha256 };
}
