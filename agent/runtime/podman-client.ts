/**
 * A thin typed wrapper around dockerode on Podman's Docker-compatible API.
 * Every call returns a typed outcome or throws a HeptoError from
 * podman-errors.ts; nothing above this file handles HTTP codes.
 */
import type Dockerode from 'dockerode';
import { DockerodeClient } from './dockerode';
import type { Duplex } from 'stream';
import { HeptoError } from '../../shared/errors';
import { scrub } from '../../shared/log';
import type { ObservedContainer } from './planner';
import { isNotFound, isNotModified, podmanMessage, statusCodeOf, toHeptoError } from './podman-errors';
import type { Role } from './specs';

export interface PodmanInfo {
  version: string;
  networkBackend: string | null;
  /** netavark version when Podman reports it (Podman >= 4.4), else null. */
  netavarkVersion: string | null;
}

export interface PullProgress {
  status: string;
  id?: string;
  progress?: string;
}

function parseTime(text: unknown): number | null {
  if (typeof text !== 'string' || text.startsWith('0001-')) return null;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : null;
}

/** Splits Docker's multiplexed log stream (8-byte frame headers) into text; plain text passes through. */
export function demuxLogs(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 0 || buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  if (i === 0) return buf.toString('utf8');
  return Buffer.concat(out).toString('utf8');
}

export class PodmanClient {
  /** For requests: an idle socket is cut after `requestTimeoutMs`. */
  readonly docker: Dockerode;
  /** For long-lived streams (events, exit watches), which may stay silent for hours: no idle timeout. */
  readonly streams: Dockerode;
  readonly socket: string;

  constructor(opts: { socketPath: string; dockerFactory?: (socketPath: string) => Dockerode; requestTimeoutMs?: number }) {
    this.socket = opts.socketPath;
    this.docker = opts.dockerFactory
      ? opts.dockerFactory(opts.socketPath)
      : new DockerodeClient({ socketPath: opts.socketPath, timeout: opts.requestTimeoutMs ?? 60_000 });
    this.streams = opts.dockerFactory ? opts.dockerFactory(opts.socketPath) : new DockerodeClient({ socketPath: opts.socketPath });
  }

  private fail(e: unknown, what: string): never {
    throw toHeptoError(e, what, this.socket);
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (e) {
      this.fail(e, 'reach the Podman API');
    }
  }

  async info(): Promise<PodmanInfo> {
    try {
      const version = (await this.docker.version()) as { Version?: string };
      let networkBackend: string | null = null;
      let netavarkVersion: string | null = null;
      try {
        const info = await this.dial<{ host?: { networkBackend?: string; networkBackendInfo?: { version?: string } } }>('/v4.0.0/libpod/info');
        networkBackend = info.host?.networkBackend ?? null;
        const v = info.host?.networkBackendInfo?.version;
        if (typeof v === 'string') netavarkVersion = v.replace(/^netavark\s+/, '').trim();
      } catch {
        // Not Podman's libpod API (or too old): leave unknown.
      }
      return { version: version.Version ?? 'unknown', networkBackend, netavarkVersion };
    } catch (e) {
      this.fail(e, 'read the Podman version');
    }
  }

  private dial<T>(path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial({ path, method: 'GET', statusCodes: { 200: true, 404: 'not found', 500: 'server error' } }, (err: unknown, data: unknown) =>
        err ? reject(err) : resolve(data as T),
      );
    });
  }

  /**
   * Containers hepto made (io.hepto.node label) and any container whose name
   * is in `names` (to notice a foreign one in the way). Stopped ones are
   * inspected for their start/finish times and exit code.
   */
  async listContainers(names: string[]): Promise<ObservedContainer[]> {
    let list: Dockerode.ContainerInfo[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        list = await this.docker.listContainers({ all: true });
        break;
      } catch (e) {
        // Podman 4.3 fails a whole listing when a container vanishes mid-way.
        if (attempt < 3 && /container not known|no such container/i.test(podmanMessage(e))) continue;
        this.fail(e, 'list containers');
      }
    }
    const ours = list.filter((c) => (c.Labels ?? {})['io.hepto.node'] !== undefined || names.includes((c.Names?.[0] ?? '').replace(/^\//, '')));
    // Inspected for start/finish times and exit code (the list has none).
    const out = await Promise.all(ours.map((c) => this.inspectOne(c.Id)));
    return out.filter((o): o is ObservedContainer => o !== null);
  }

  /** One container by id, as listContainers would report it; null when gone. */
  async inspectOne(id: string): Promise<ObservedContainer | null> {
    try {
      const i = await this.docker.getContainer(id).inspect();
      const labels = (i.Config?.Labels ?? {}) as Record<string, string>;
      const role = labels['io.hepto.role'];
      const startedAt = parseTime(i.State?.StartedAt);
      return {
        id: i.Id,
        name: String(i.Name ?? '').replace(/^\//, ''),
        node: labels['io.hepto.node'] ?? null,
        role: role === 'wesher' || role === 'k3s' ? (role as Role) : null,
        state: String(i.State?.Status ?? 'unknown').toLowerCase(),
        hash: labels['io.hepto.spec-hash'] ?? null,
        baseHash: labels['io.hepto.spec-hash-base'] ?? null,
        join: labels['io.hepto.join'] ?? null,
        startedAt,
        finishedAt: parseTime(i.State?.FinishedAt),
        // The main process, whose network namespace holds the overlay link (0 when not running).
        pid: typeof i.State?.Pid === 'number' && i.State.Pid > 0 ? i.State.Pid : null,
        // A container that never ran has no exit code worth showing.
        exitCode: startedAt !== null && typeof i.State?.ExitCode === 'number' ? i.State.ExitCode : null,
      };
    } catch (e) {
      if (isNotFound(e)) return null;
      this.fail(e, `inspect container ${id.slice(0, 12)}`);
    }
  }

  /**
   * Calls `onExit` once when the container's process ends: an attach stream
   * (stdout only, discarded: wesher and k3s log to stderr; Podman refuses an
   * attach with no stream), which conmon closes as soon as the process exits
   * (tens of ms, where the event stream may lag by its poll interval). Also ends if
   * Podman goes away; the caller re-checks either way. `close()` detaches
   * without calling `onExit`.
   */
  async watchExit(id: string, onExit: (why: string) => void): Promise<{ close(): void }> {
    let stream: NodeJS.ReadWriteStream & { destroy?: () => void };
    try {
      stream = (await this.streams.getContainer(id).attach({ stream: true, stdin: false, stdout: true, stderr: false, logs: false })) as typeof stream;
    } catch (e) {
      if (isNotFound(e)) {
        onExit('gone');
        return { close: () => undefined };
      }
      this.fail(e, `watch container ${id.slice(0, 12)}`);
    }
    let closed = false;
    const fire = (why: string): void => {
      if (closed) return;
      closed = true;
      onExit(why);
    };
    stream.on('data', () => undefined);
    stream.on('end', () => fire('end'));
    stream.on('close', () => fire('close'));
    stream.on('error', (e: unknown) => fire(`error: ${String((e as Error)?.message ?? e)}`));
    return {
      close: () => {
        closed = true;
        stream.destroy?.();
      },
    };
  }

  async listNetworks(): Promise<string[]> {
    return (await this.networks()).map((n) => n.name);
  }

  /** Networks hepto created (labelled io.hepto.managed-by), by name. */
  async listManagedNetworks(): Promise<string[]> {
    return (await this.networks()).filter((n) => n.labels['io.hepto.managed-by'] === 'hepto-agent').map((n) => n.name);
  }

  private async networks(): Promise<Array<{ name: string; labels: Record<string, string> }>> {
    try {
      const nets = await this.docker.listNetworks();
      return nets.map((n) => ({ name: n.Name, labels: (n.Labels ?? {}) as Record<string, string> }));
    } catch (e) {
      this.fail(e, 'list networks');
    }
  }

  async removeNetwork(name: string): Promise<void> {
    try {
      await this.docker.getNetwork(name).remove();
    } catch (e) {
      if (isNotFound(e)) return;
      this.fail(e, `remove network ${name}`);
    }
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      this.fail(e, `inspect image ${ref}`);
    }
  }

  /** Pulls `ref`, reporting progress; throws IMAGE_MISSING with Podman's reason on failure. */
  async pull(ref: string, onProgress: (p: PullProgress) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.pull(ref)) as NodeJS.ReadableStream;
    } catch (e) {
      const h = toHeptoError(e, `pull image ${ref}`, this.socket);
      if (h.code !== 'INTERNAL') throw h;
      throw imageMissing(ref, h.message.replace(/^Podman refused to pull image \S+( \(HTTP \d+\))?: /, ''));
    }
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: unknown, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          const failed = err ? String((err as Error).message ?? err) : output.find((o) => o.error)?.error;
          if (failed) {
            reject(imageMissing(ref, scrub(failed)));
          } else resolve();
        },
        (ev: { status?: string; id?: string; progress?: string; error?: string }) => {
          if (ev.status) onProgress({ status: ev.status, id: ev.id, progress: ev.progress });
        },
      );
    });
    if (!(await this.imageExists(ref))) {
      throw new HeptoError('IMAGE_MISSING', `image ${ref} is still missing after its pull finished`, { hint: `pull it by hand: podman pull ${ref}` });
    }
  }

  /** An image's labels, or null when there is no such image. */
  async imageLabels(ref: string): Promise<Record<string, string> | null> {
    try {
      const i = await this.docker.getImage(ref).inspect();
      return { ...((i.Config?.Labels ?? {}) as Record<string, string>) };
    } catch (e) {
      if (isNotFound(e)) return null;
      this.fail(e, `inspect image ${ref}`);
    }
  }

  /**
   * Builds `tag` from `context`, an uncompressed tar holding a Dockerfile and
   * its files, through the compat /build endpoint. Each line of build output
   * goes to `onProgress`; an error in the stream, or no image under `tag`
   * afterwards, rejects with IMAGE_BUILD_FAILED (Podman unreachable, disk
   * full and the like keep their own codes, as for pull()).
   */
  async build(context: Buffer, opts: { tag: string; dockerfile?: string }, onProgress: (line: string) => void = () => undefined): Promise<void> {
    const { tag } = opts;
    const hint = `see the build output in the agent log; or build the image yourself and set its reference in config images`;
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.buildImage(context as unknown as NodeJS.ReadableStream, {
        t: tag,
        dockerfile: opts.dockerfile ?? 'Dockerfile',
        rm: true,
        forcerm: true,
      })) as NodeJS.ReadableStream;
    } catch (e) {
      const h = toHeptoError(e, `build image ${tag}`, this.socket);
      if (h.code !== 'INTERNAL') throw h;
      const why = podmanMessage(e) || `Podman answered HTTP ${statusCodeOf(e) ?? '?'} without a reason (its log may say more)`;
      throw new HeptoError('IMAGE_BUILD_FAILED', `image ${tag} could not be built: ${why}`, { hint, cause: e });
    }
    await new Promise<void>((resolve, reject) => {
      let pending = '';
      const emit = (text: string): void => {
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) onProgress(scrub(l.replace(/\r$/, '')));
      };
      this.docker.modem.followProgress(
        stream,
        (err: unknown, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          if (pending.trim()) onProgress(scrub(pending));
          pending = '';
          const bad = output.find((o) => o.error || o.errorDetail?.message);
          const failed = err ? String((err as Error).message ?? err) : bad ? (bad.error ?? bad.errorDetail?.message) : undefined;
          if (failed) {
            const h = toHeptoError(new Error(failed), `build image ${tag}`, this.socket);
            if (h.code === 'DISK_FULL') reject(h);
            else reject(new HeptoError('IMAGE_BUILD_FAILED', `image ${tag} could not be built: ${scrub(failed.trim())}`, { hint }));
          } else resolve();
        },
        (ev: { stream?: string; status?: string; error?: string }) => {
          if (typeof ev.stream === 'string') emit(ev.stream);
          else if (typeof ev.status === 'string') emit(ev.status + '\n');
        },
      );
    });
    if (!(await this.imageExists(tag))) {
      throw new HeptoError('IMAGE_BUILD_FAILED', `image ${tag} is missing after its build finished`, { hint });
    }
  }

  async createNetwork(opts: Dockerode.NetworkCreateOptions): Promise<void> {
    try {
      await this.docker.createNetwork(opts);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 409) return; // exists already
      this.fail(e, `create network ${opts.Name}`);
    }
  }

  async createContainer(opts: Dockerode.ContainerCreateOptions): Promise<string> {
    try {
      // dockerode would otherwise serialise the whole spec into the query string
      // (docker-modem uses `_query || opts`), and Podman logs request lines: the
      // cluster key in Env would reach the journal. Only the name goes in the URL.
      const { name, ...body } = opts;
      const c = await this.docker.createContainer({ _query: { name }, _body: body } as unknown as Dockerode.ContainerCreateOptions);
      return c.id;
    } catch (e) {
      this.fail(e, `create container ${opts.name}`);
    }
  }

  /** Starts a container; already running counts as success. */
  async start(id: string, name: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (e) {
      if (isNotModified(e)) return;
      this.fail(e, `start container ${name}`);
    }
  }

  /** Restarts a container (10 s to stop gracefully). */
  async restart(id: string, name: string): Promise<void> {
    try {
      await this.docker.getContainer(id).restart({ t: 10 });
    } catch (e) {
      this.fail(e, `restart container ${name}`);
    }
  }

  /** Removes a container (forcefully); already gone counts as success. */
  async remove(id: string, name: string): Promise<void> {
    try {
      // v: anonymous volumes go with the container (an image VOLUME not bound would pile up at every recreate).
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (e) {
      if (isNotFound(e)) return;
      this.fail(e, `remove container ${name}`);
    }
  }

  /**
   * Runs `argv` inside a running container (Podman's exec API, as `podman
   * exec` does) and waits for it to end: its exit code and its stdout and
   * stderr together, secrets scrubbed. argv goes in the request body, but
   * Podman may log it and `podman inspect` lists execs: never put a secret in
   * it. Throws a HeptoError when Podman refuses (container gone or stopped)
   * or when the command has not ended within `timeoutMs` (it is left running
   * inside the container).
   */
  async exec(id: string, name: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number | null; output: string }> {
    const what = `run ${argv[0]} in container ${name}`;
    const abort = new AbortController();
    let timedOut = false;
    let stream: Duplex | null = null;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
      stream?.destroy?.();
    }, timeoutMs);
    const timeoutError = (): HeptoError =>
      new HeptoError('INTERNAL', `${argv[0]} in container ${name} did not finish within ${Math.round(timeoutMs / 1000)} s`, {
        hint: `it is retried; see podman logs ${name}, or try it by hand: podman exec ${name} ${argv.join(' ')}`,
      });
    try {
      const ex = await this.docker
        .getContainer(id)
        .exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false, abortSignal: abort.signal });
      const s = await ex.start({ hijack: true, stdin: false, abortSignal: abort.signal });
      stream = s;
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        s.on('data', (d: Buffer | string) => chunks.push(Buffer.isBuffer(d) ? d : Buffer.from(d)));
        s.on('end', () => resolve());
        s.on('close', () => resolve());
        s.on('error', (e: unknown) => reject(e));
        if (timedOut) reject(timeoutError());
      });
      if (timedOut) throw timeoutError();
      // The stream ends when the process does; its exit code may take a moment to be recorded.
      let info = await ex.inspect({ abortSignal: abort.signal });
      for (let i = 0; i < 20 && info.Running && !timedOut; i++) {
        await new Promise((r) => setTimeout(r, 50));
        info = await ex.inspect({ abortSignal: abort.signal });
      }
      if (timedOut) throw timeoutError();
      const output = scrub(demuxLogs(Buffer.concat(chunks)).replace(/\r/g, '')).trim();
      return { exitCode: typeof info.ExitCode === 'number' && !info.Running ? info.ExitCode : null, output };
    } catch (e) {
      if (timedOut) throw timeoutError();
      if (isNotFound(e)) throw new HeptoError('INTERNAL', `cannot ${what}: the container does not exist`, { cause: e });
      if (statusCodeOf(e) === 409 || /not running|is stopped|is paused|state improper/i.test(podmanMessage(e))) {
        throw new HeptoError('INTERNAL', `cannot ${what}: the container is not running`, { cause: e });
      }
      this.fail(e, what);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last `lines` lines of a container's output, secrets scrubbed. */
  async logTail(id: string, lines: number): Promise<string[]> {
    try {
      const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
      const text = demuxLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
      return text
        .split('\n')
        .map((l) => scrub(l.replace(/\r$/, '')))
        .filter((l) => l.length > 0)
        .slice(-lines);
    } catch (e) {
      if (isNotFound(e)) return [];
      this.fail(e, 'read container logs');
    }
  }
}

/** An image that could not be pulled: Podman's reason, and what to check. */
function imageMissing(ref: string, why: string): HeptoError {
  return new HeptoError('IMAGE_MISSING', `image ${ref} is missing and could not be pulled: ${why}`, {
    hint: `check the reference in config images, the registry and network, or load it by hand (podman load / podman pull ${ref})`,
  });
}
