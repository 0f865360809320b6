/**
 * Podman's event stream (GET /events), reduced to what the supervisor acts
 * on: a hepto container died, ran out of memory or was stopped. Podman
 * spells the exit code `containerExitCode`, Docker `exitCode`: both count.
 */
import type Dockerode from 'dockerode';
import type { Logger } from '../../shared/log';
import { errorMessage } from '../../shared/errors';

export type ContainerEventKind = 'die' | 'oom' | 'stop';

export interface ContainerEvent {
  kind: ContainerEventKind;
  id: string;
  name: string | null;
  exitCode: number | null;
  /** ms since epoch, as Podman stamped it (0 if absent). */
  time: number;
}

const KINDS: ContainerEventKind[] = ['die', 'oom', 'stop'];

/** Parses one JSON event; null when it is not a hepto container event we act on. */
export function parseEvent(raw: unknown): ContainerEvent | null {
  if (!raw || typeof raw !== 'object') return null;
  const ev = raw as {
    Type?: string;
    Action?: string;
    status?: string;
    id?: string;
    time?: number;
    timeNano?: number;
    Actor?: { ID?: string; Attributes?: Record<string, string> };
  };
  const action = (ev.Action ?? ev.status ?? '') as ContainerEventKind;
  if ((ev.Type ?? 'container') !== 'container' || !KINDS.includes(action)) return null;
  const attrs = ev.Actor?.Attributes ?? {};
  if (!('io.hepto.node' in attrs)) return null;
  const codeText = attrs.exitCode ?? attrs.containerExitCode;
  const code = codeText === undefined ? NaN : Number(codeText);
  const time = typeof ev.timeNano === 'number' ? Math.floor(ev.timeNano / 1e6) : typeof ev.time === 'number' ? ev.time * 1000 : 0;
  return { kind: action, id: ev.Actor?.ID ?? ev.id ?? '', name: attrs.name ?? null, exitCode: Number.isFinite(code) ? code : null, time };
}

/** Splits a byte stream into JSON values, one per line (tolerating values split across chunks). */
export class JsonLines {
  private buf = '';
  push(chunk: string, out: (v: unknown) => void): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      try {
        out(JSON.parse(line));
      } catch {
        // A torn or foreign line: ignore it, the next reconcile catches up anyway.
      }
    }
  }
}

export interface EventSubscription {
  close(): void;
}

/**
 * Subscribes to die/oom/stop events of hepto containers. `onEnd` is called
 * once when the stream ends or fails (Podman stopped, socket gone).
 */
export async function subscribeEvents(
  docker: Dockerode,
  logger: Logger,
  onEvent: (e: ContainerEvent) => void,
  onEnd: (reason: string) => void,
): Promise<EventSubscription> {
  const stream = (await docker.getEvents({
    // Only the type filter: Podman 4.3's compat API drops every event once an
    // `event` or bare `label` filter is given, so the rest is filtered here.
    filters: { type: ['container'] },
  })) as NodeJS.ReadableStream & { destroy?: () => void };
  const lines = new JsonLines();
  let ended = false;
  const end = (reason: string): void => {
    if (ended) return;
    ended = true;
    onEnd(reason);
  };
  stream.on('data', (chunk: Buffer | string) =>
    lines.push(chunk.toString(), (v) => {
      const ev = parseEvent(v);
      if (ev) onEvent(ev);
    }),
  );
  stream.on('end', () => end('event stream ended'));
  stream.on('close', () => end('event stream closed'));
  stream.on('error', (e: unknown) => {
    logger.debug('event stream error', { error: errorMessage(e) });
    end(`event stream failed: ${errorMessage(e)}`);
  });
  return {
    close: () => {
      ended = true;
      stream.destroy?.();
    },
  };
}
