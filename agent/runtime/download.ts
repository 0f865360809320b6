/**
 * A small bounded HTTP(S) GET for release files: follows redirects (GitHub
 * release downloads answer 302 to a storage host), refuses bodies over a size
 * cap (from Content-Length up front, and while streaming), and gives up at a
 * deadline that covers the whole exchange, redirects included. Errors are
 * DownloadErrors naming the URL asked for and what went wrong; callers turn
 * them into HeptoErrors with their own hint.
 */
import http from 'http';
import https from 'https';

export interface HttpGetOptions {
  /** Bodies larger than this are refused. */
  maxBytes: number;
  /** Epoch ms after which the download is abandoned. */
  deadline: number;
  /** Called as the body arrives: bytes so far, and the announced length if any. */
  onProgress?: (bytes: number, total: number | null) => void;
  /** Most redirects followed (default 5). */
  maxRedirects?: number;
}

/** Resolves the body of a 2xx answer; rejects with a DownloadError otherwise. */
export type HttpGet = (url: string, opts: HttpGetOptions) => Promise<Buffer>;

export class DownloadError extends Error {
  /** The URL asked for (before redirects). */
  readonly url: string;
  /** HTTP status of the final answer, when there was one. */
  readonly status: number | undefined;
  readonly kind: 'http' | 'too-large' | 'timeout' | 'network' | 'redirects' | 'bad-url';
  constructor(url: string, kind: DownloadError['kind'], message: string, status?: number) {
    super(message);
    this.name = 'DownloadError';
    this.url = url;
    this.kind = kind;
    this.status = status;
  }
}

/** The node http/https implementation of HttpGet. */
export const httpGet: HttpGet = (url, opts) => {
  const maxRedirects = opts.maxRedirects ?? 5;
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    let current: http.ClientRequest | null = null;
    const finish = (err: Error | null, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      current?.destroy();
      if (err) reject(err);
      else resolve(body!);
    };
    const remaining = Math.max(0, opts.deadline - Date.now());
    const timer = setTimeout(() => finish(new DownloadError(url, 'timeout', `no complete answer within ${formatMs(remaining)}`)), remaining);

    const get = (target: string, hops: number): void => {
      let u: URL;
      try {
        u = new URL(target);
      } catch {
        finish(new DownloadError(url, 'bad-url', `not a URL: ${target}`));
        return;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        finish(new DownloadError(url, 'bad-url', `unsupported scheme ${u.protocol} in ${target} (http and https only)`));
        return;
      }
      const mod = u.protocol === 'https:' ? https : http;
      const req = mod.get(u, { headers: { 'user-agent': 'hepto-agent', accept: '*/*' } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (hops >= maxRedirects) {
            finish(new DownloadError(url, 'redirects', `more than ${maxRedirects} redirects (last to ${res.headers.location})`, status));
            return;
          }
          get(new URL(res.headers.location, u).toString(), hops + 1);
          return;
        }
        if (status < 200 || status >= 300) {
          res.resume();
          const where = target === url ? '' : ` (after redirect to ${target})`;
          finish(new DownloadError(url, 'http', `HTTP ${status} ${res.statusMessage ?? ''}`.trim() + where, status));
          return;
        }
        const lengthHeader = res.headers['content-length'];
        const total = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
        if (total !== null && total > opts.maxBytes) {
          finish(new DownloadError(url, 'too-large', `${total} bytes announced, more than the ${opts.maxBytes}-byte limit`));
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          if (settled) return;
          bytes += c.length;
          if (bytes > opts.maxBytes) {
            finish(new DownloadError(url, 'too-large', `more than the ${opts.maxBytes}-byte limit`));
            return;
          }
          chunks.push(c);
          opts.onProgress?.(bytes, total);
        });
        res.on('end', () => {
          if (total !== null && bytes < total) finish(new DownloadError(url, 'network', `connection closed after ${bytes} of ${total} bytes`));
          else finish(null, Buffer.concat(chunks));
        });
        res.on('aborted', () => finish(new DownloadError(url, 'network', `connection closed after ${bytes} bytes`)));
        res.on('error', (e) => finish(new DownloadError(url, 'network', e.message)));
      });
      current = req;
      req.on('error', (e: NodeJS.ErrnoException) => finish(new DownloadError(url, 'network', e.code ? `${e.code}: ${e.message}` : e.message)));
    };
    get(url, 0);
  });
};

function formatMs(ms: number): string {
  return ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}
