/**
 * The set-up every supervisor test against real Podman repeats: a harness
 * (its own store and network namespace), a temp storage_base, a config for a
 * node bound to the namespace's address with the stand-in images, and
 * supervisors whose log is printed when a test fails. Mocha hooks are
 * registered by podmanSuite() in the calling describe().
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { systemClock } from '../../shared/clock';
import type { HeptoConfig } from '../../shared/config/types';
import { memoryLogger } from '../helpers/memory-logger';
import { Supervisor, type SupervisorOptions } from '../../agent/runtime/supervisor';
import { testConfig } from '../unit/runtime/fixtures';
import { PodmanHarness, STAND_INS } from './harness';

export interface PodmanSuite {
  readonly h: PodmanHarness;
  readonly storage: string;
  /** The log of the supervisor made last. */
  readonly lines: string[];
  /** A master node's config on this harness: bound to its address, stand-in images, temp storage. */
  config(node: string, over?: Partial<HeptoConfig>): HeptoConfig;
  /** A supervisor with a debug log, no cron; stopped by the suite. */
  supervisor(cfg: HeptoConfig, extra?: Partial<SupervisorOptions>): Supervisor;
}

export function podmanSuite(
  opts: { harness?: () => Promise<PodmanHarness>; closeHarness?: (h: PodmanHarness) => Promise<void>; perTest?: boolean } = {},
): PodmanSuite {
  const sups: Supervisor[] = [];
  let h: PodmanHarness | null = null;
  let storage = '';
  let lines: string[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of sups.splice(0)) await s.stop();
  };

  before(async () => {
    h = await (opts.harness ?? (() => PodmanHarness.start()))();
    storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-storage-'));
  });
  after(async () => {
    await stopAll();
    if (h) await (opts.closeHarness ?? ((x) => x.close()))(h);
    if (storage) fs.rmSync(storage, { recursive: true, force: true });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(lines.slice(-40).join('\n'));
    if (opts.perTest) {
      await stopAll();
      await h?.removeAll();
    }
  });

  return {
    get h() {
      if (!h) throw new Error('the Podman harness is not started (podmanSuite hooks run in before())');
      return h;
    },
    get storage() {
      return storage;
    },
    get lines() {
      return lines;
    },
    config(node, over = {}) {
      return testConfig({
        node,
        master: node,
        ip: [`${this.h.hostAddress}/64`],
        gw: [],
        storage_base: storage,
        podman_socket: this.h.socket,
        images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
        ...over,
      });
    },
    supervisor(cfg, extra = {}) {
      const mem = memoryLogger('debug', 'plain');
      lines = mem.lines;
      const s = new Supervisor({ config: cfg, clock: systemClock, logger: mem.logger, cronSchedule: '', ...extra });
      sups.push(s);
      return s;
    },
  };
}
