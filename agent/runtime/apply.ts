/**
 * Performs the planner's actions against Podman, in order, and records
 * their outcome in the history (restarts, failures, backoff, last error,
 * last log lines). An unreachable Podman aborts the run (thrown); any other
 * failure is logged, recorded for status, and skips what depends on it.
 */
import fs from 'fs';
import { errorMessage, HeptoError, isHeptoError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { writeFileAtomic } from '../../shared/atomic-write';
import { backoffDelay, retryAt, type BackoffPolicy } from './backoff';
import { containerHistory, type Action, type ContainerHistory, type DeathNote, type History } from './planner';
import type { OverlayLinks } from './overlay-link';
import { ensureWesherImage } from './wesher-image';
import type { PodmanClient } from './podman-client';
import { containerName, type ContainerSpec } from './specs';

export const LOG_LINES = 20;

export interface ApplyContext {
  client: PodmanClient;
  links: OverlayLinks;
  history: History;
  logger: Logger;
  now: () => number;
  policy: BackoffPolicy;
  random: () => number;
  /** True once the run must stop: checked before each action. */
  aborted?: () => boolean;
  /** An image pull or wesher build finished (metrics). */
  image?: (how: 'pull' | 'build', ok: boolean) => void;
}

function describe(e: unknown): string {
  return isHeptoError(e) ? e.describe() : errorMessage(e);
}

function update(ctx: ApplyContext, name: string, patch: Partial<ContainerHistory>): ContainerHistory {
  const h = { ...containerHistory(ctx.history, name), ...patch };
  ctx.history.containers[name] = h;
  return h;
}

function noteDeath(ctx: ApplyContext, name: string, death: DeathNote | null): void {
  if (!death) return;
  update(ctx, name, { lastDeath: death.key, failures: death.failures, nextStartAt: death.nextStartAt, lastExitCode: death.exitCode });
}

function noteFailure(ctx: ApplyContext, name: string, e: unknown): void {
  const h = containerHistory(ctx.history, name);
  const failures = h.failures + 1;
  update(ctx, name, { failures, nextStartAt: retryAt(ctx.now(), failures, ctx.policy, ctx.random()), lastError: describe(e) });
}

function ensureDirs(spec: ContainerSpec): void {
  for (const d of spec.dirs) {
    try {
      fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new HeptoError('STATE_UNWRITABLE', `cannot create ${d} for ${spec.name}: ${errorMessage(e)}`, {
        hint: 'check storage_base exists, is writable by root and has free space',
      });
    }
  }
}

/** Secret files (the k3s token), 0600 and atomic, so a crash never leaves half a token. */
async function writeFiles(spec: ContainerSpec): Promise<void> {
  // writeFileAtomic's errors (DISK_FULL, STATE_UNWRITABLE) name the file and never its content.
  for (const f of spec.files) await writeFileAtomic(f.path, f.content, { mode: 0o600 });
}

async function createAndStart(ctx: ApplyContext, spec: ContainerSpec): Promise<void> {
  ensureDirs(spec);
  await writeFiles(spec);
  const id = await ctx.client.createContainer(spec.create);
  await ctx.client.start(id, spec.name);
}

/** Runs the actions; returns a one-line summary of what was done. Throws only PODMAN_UNREACHABLE. */
export async function applyActions(actions: Action[], ctx: ApplyContext): Promise<string[]> {
  const done: string[] = [];
  const failedNodes = new Set<string>();
  const failedImages = new Set<string>();
  for (const a of actions) {
    if (a.type === 'wait') continue; // the supervisor shows it; nothing to do on Podman
    if (ctx.aborted?.()) {
      ctx.logger.warn('reconcile run stopped before its remaining actions', { next: a.type, left: actions.length - actions.indexOf(a) });
      break;
    }
    const name =
      a.type === 'pull' || a.type === 'build-wesher'
        ? a.image
        : a.type === 'create-network'
          ? a.network.name
          : a.type === 'remove-network'
            ? a.network
            : a.name;
    const node = a.type === 'pull' || a.type === 'build-wesher' || a.type === 'remove-network' ? null : a.type === 'create-network' ? a.network.node : a.node;
    if (node && failedNodes.has(node) && a.type !== 'backoff') continue;
    if ((a.type === 'create' || a.type === 'recreate') && failedImages.has(a.spec.image)) {
      update(ctx, a.name, { lastError: `waiting for image ${a.spec.image}` });
      failedNodes.add(a.node);
      continue;
    }
    try {
      switch (a.type) {
        case 'create-network':
          ctx.logger.info('creating network', { network: a.network.name, driver: a.network.create.Driver });
          await ctx.client.createNetwork(a.network.create);
          break;
        case 'pull': {
          ctx.logger.info('pulling image', { image: a.image });
          let last = 0;
          await ctx.client.pull(a.image, (p) => {
            const t = ctx.now();
            if (t - last < 2_000 && !/complete|digest|status/i.test(p.status)) return;
            last = t;
            ctx.logger.info('pull progress', { image: a.image, status: p.status, layer: p.id, progress: p.progress });
          });
          delete ctx.history.images[a.image];
          ctx.logger.info('image pulled', { image: a.image });
          ctx.image?.('pull', true);
          break;
        }
        case 'build-wesher':
          await ensureWesherImage({ client: ctx.client, ref: a.image, baseUrl: a.baseUrl, pinnedSha256: a.sha256, logger: ctx.logger });
          delete ctx.history.images[a.image];
          ctx.image?.('build', true);
          break;
        case 'create':
          ctx.logger.info('creating container', { container: a.name, image: a.spec.image });
          await createAndStart(ctx, a.spec);
          update(ctx, a.name, { lastError: null });
          break;
        case 'recreate':
          ctx.logger.info('recreating container', { container: a.name, reason: a.reason });
          noteDeath(ctx, a.name, a.death);
          await ctx.client.remove(a.id, a.name);
          await createAndStart(ctx, a.spec);
          update(ctx, a.name, { lastError: null, restarts: containerHistory(ctx.history, a.name).restarts + (a.death ? 1 : 0) });
          break;
        case 'start':
          noteDeath(ctx, a.name, a.death);
          ctx.logger.info('starting container', { container: a.name, exit_code: a.death?.exitCode ?? undefined, failures: a.death?.failures });
          await ctx.client.start(a.id, a.name);
          update(ctx, a.name, { lastError: null, restarts: containerHistory(ctx.history, a.name).restarts + 1 });
          break;
        case 'remove':
          ctx.logger.info('removing container', { container: a.name, reason: a.reason });
          await ctx.client.remove(a.id, a.name);
          break;
        case 'remove-network':
          ctx.logger.info('removing network', { network: a.network, reason: a.reason });
          await ctx.client.removeNetwork(a.network);
          break;
        case 'restart':
          ctx.logger.info('restarting container', { container: a.name, reason: a.reason });
          await ctx.client.restart(a.id, a.name);
          break;
        case 'ensure-link': {
          const steps = await ctx.links.ensure(a.pid, a.link, a.have);
          if (ctx.history.links) delete ctx.history.links[a.node];
          ctx.logger.info('overlay link set', {
            container: a.name,
            interface: a.link.ifname,
            address: a.link.address,
            mtu: a.link.mtu,
            did: steps.join(', '),
            had_mtu: a.have.mtu ?? undefined,
          });
          break;
        }
        case 'backoff':
          if (a.death) {
            noteDeath(ctx, a.name, a.death);
            ctx.logger.warn('container keeps failing, backing off', {
              container: a.name,
              exit_code: a.death.exitCode,
              failures: a.death.failures,
              retry_in_ms: a.until - ctx.now(),
            });
          }
          if (a.fetchLog) update(ctx, a.name, { lastLog: await ctx.client.logTail(a.id, LOG_LINES) });
          continue;
      }
      done.push(`${a.type} ${name}`);
    } catch (e) {
      if (a.type === 'pull' || a.type === 'build-wesher') ctx.image?.(a.type === 'pull' ? 'pull' : 'build', false);
      if (isHeptoError(e) && e.code === 'PODMAN_UNREACHABLE') throw e;
      ctx.logger.error('reconcile action failed', { action: a.type, target: name, code: isHeptoError(e) ? e.code : undefined, error: describe(e) });
      if (a.type === 'pull' || a.type === 'build-wesher') {
        const ih = ctx.history.images[a.image] ?? { failures: 0, nextPullAt: 0, lastError: null };
        const failures = ih.failures + 1;
        ctx.history.images[a.image] = { failures, nextPullAt: ctx.now() + backoffDelay(failures + 1, ctx.policy, ctx.random()), lastError: describe(e) };
        failedImages.add(a.image);
      } else if (a.type === 'ensure-link') {
        const links = (ctx.history.links ??= {});
        const failures = (links[a.node]?.failures ?? 0) + 1;
        links[a.node] = { failures, nextAt: retryAt(ctx.now(), failures, ctx.policy, ctx.random()), lastError: describe(e) };
      } else if (a.type === 'remove-network') {
        // Logged above; tried again at the next full pass.
      } else if (a.type === 'create-network') {
        failedNodes.add(a.network.node);
        for (const role of ['wesher', 'k3s'] as const) update(ctx, containerName(a.network.node, role), { lastError: describe(e) });
      } else {
        noteFailure(ctx, a.name, e);
        if (a.role === 'wesher') failedNodes.add(a.node);
        if (a.type !== 'remove') {
          try {
            const id = a.type === 'create' ? null : a.id;
            if (id) update(ctx, a.name, { lastLog: await ctx.client.logTail(id, LOG_LINES) });
          } catch {
            // best effort
          }
        }
      }
    }
  }
  return done;
}
