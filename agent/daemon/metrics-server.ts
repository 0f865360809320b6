/**
 * The Prometheus endpoint: plain HTTP, GET (or HEAD) /metrics on the address
 * in config field metrics_listen; any other path is 404, any other method
 * 405. A bind that fails (port taken, address not on this host) never stops
 * the agent: start() answers with a status problem naming metrics_listen.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import { parseHostPort } from '../../shared/config/address';
import { errnoCode, errorMessage } from '../../shared/errors';
import type { Logger } from '../../shared/log';

/** The documented default port (docs/metrics.md), next to gossip's 7947. */
export const METRICS_PORT = 9947;

export type Scrape = () => Promise<{ contentType: string; body: string }>;

export class MetricsServer {
  private server: http.Server | null = null;

  constructor(
    private readonly listen: string,
    private readonly scrape: Scrape,
    private readonly log: Logger,
  ) {}

  /** Listens; null when it does, otherwise the problem for status (logged too). */
  async start(): Promise<string | null> {
    let host: string;
    let port: number;
    try {
      ({ host, port } = parseHostPort(this.listen, METRICS_PORT));
    } catch (e) {
      return this.failed(e);
    }
    const server = http.createServer((req, res) => this.handle(req, res));
    // A scraper that stalls holds a socket only this long.
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.keepAliveTimeout = 30_000;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      server.close();
      return this.failed(e);
    }
    server.on('error', (e) => this.log.warn('metrics endpoint error', { error: errorMessage(e) }));
    this.server = server;
    this.log.info('metrics endpoint listening', { metrics_listen: this.listen, url: `http://${this.listen}/metrics` });
    return null;
  }

  /** The port actually bound (tests bind port 0), or null. */
  port(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? (a as AddressInfo).port : null;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private failed(e: unknown): string {
    const code = errnoCode(e);
    const why =
      code === 'EADDRINUSE'
        ? 'another program already uses that port (find it with: ss -ltnp)'
        : code === 'EADDRNOTAVAIL'
          ? "that address is not one of this machine's"
          : code === 'EACCES'
            ? 'permission denied'
            : errorMessage(e);
    this.log.error('cannot serve metrics', { metrics_listen: this.listen, error: code ?? errorMessage(e) });
    return `the metrics endpoint is off: cannot listen on metrics_listen ${JSON.stringify(this.listen)} (${why}); choose another metrics_listen, or set it to "" to turn metrics off, then restart the agent`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    this.scrape().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (e) => {
        this.log.warn('metrics scrape failed', { error: errorMessage(e) });
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('scrape failed\n');
      },
    );
  }
}
