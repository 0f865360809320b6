/**
 * A gossip-only agent on loopback, run in the test process: its validated
 * config under `dir`, and the Agent itself with a memory log.
 */
import assert from 'node:assert/strict';
import * as path from 'path';
import { Agent } from '../../agent/daemon/agent';
import { NoRuntime } from '../../agent/daemon/runtime-seam';
import type { GossipTiming } from '../../agent/gossip/timing';
import { systemClock } from '../../shared/clock';
import type { HeptoConfig } from '../../shared/config/types';
import { validateConfig } from '../../shared/config/validate';
import { memoryLogger } from '../helpers/memory-logger';
import { CLUSTER_KEY, OVERLAY_KEY } from './agent-cluster';
import { freePort } from './free-port';

/** Node `solo`, its own master, runtime none, no metrics, a free gossip port; `over` wins. */
export async function soloConfig(dir: string, over: Record<string, unknown> = {}): Promise<HeptoConfig> {
  const { config, problems } = validateConfig({
    node: 'solo',
    master: 'solo',
    overlay_key: OVERLAY_KEY,
    cluster_key: CLUSTER_KEY,
    runtime: 'none',
    gossip_listen: ['127.0.0.1'],
    gossip_port: await freePort(),
    storage_base: path.join(dir, 'srv'),
    control_socket: path.join(dir, 'agent.sock'),
    metrics_listen: '',
    ...over,
  });
  assert.deepEqual(problems, []);
  return config!;
}

/** An Agent for `config` with NoRuntime and a memory log (not started). */
export function inProcessAgent(config: HeptoConfig, timing?: GossipTiming): { agent: Agent; lines: string[] } {
  const mem = memoryLogger('debug', 'plain');
  const agent = new Agent({
    config,
    clock: systemClock,
    logger: mem.logger,
    runtime: new NoRuntime(),
    notifier: { ready() {}, status() {}, stopping() {} },
    ...(timing ? { timing } : {}),
  });
  return { agent, lines: mem.lines };
}
