import assert from 'node:assert/strict';
import { applyActions, type ApplyContext } from '../../../agent/runtime/apply';
import { DEFAULT_BACKOFF } from '../../../agent/runtime/backoff';
import type { OverlayLinks } from '../../../agent/runtime/overlay-link';
import { emptyHistory, type Action } from '../../../agent/runtime/planner';
import type { PodmanClient } from '../../../agent/runtime/podman-client';
import { memoryLogger } from '../../helpers/memory-logger';

/** A Podman client that records what it is asked, and the one link set-up. */
function fakes(calls: string[]): { client: PodmanClient; links: OverlayLinks } {
  const client = {
    restart: async (_id: string, name: string) => void calls.push(`restart ${name}`),
    remove: async (_id: string, name: string) => void calls.push(`remove ${name}`),
    removeNetwork: async (name: string) => void calls.push(`remove-network ${name}`),
  } as unknown as PodmanClient;
  const links = { ensure: async () => (calls.push('ensure-link'), ['mtu 1320 up']) } as unknown as OverlayLinks;
  return { client, links };
}

function ctx(calls: string[], aborted?: () => boolean): ApplyContext {
  const { client, links } = fakes(calls);
  return {
    client,
    links,
    history: emptyHistory(),
    logger: memoryLogger('debug', 'plain').logger,
    now: () => 0,
    policy: DEFAULT_BACKOFF,
    random: () => 0.5,
    aborted,
  };
}

const LINK = { node: 'n1', container: 'hepto-n1-wesher', ifname: 'wgoverlay', address: '10.1.2.3/32', mtu: 1320 };
const ACTIONS: Action[] = [
  { type: 'wait', name: 'hepto-n1-k3s', node: 'n1', role: 'k3s', reason: 'waits' },
  { type: 'ensure-link', name: 'hepto-n1-wesher', node: 'n1', role: 'wesher', pid: 7, link: LINK, have: { exists: true, up: true, mtu: 1420, addresses: [] } },
  { type: 'restart', name: 'hepto-n1-k3s', node: 'n1', role: 'k3s', id: 'k', reason: 'wesher restarted' },
  { type: 'remove', name: 'hepto-old-k3s', node: 'old', role: 'k3s', id: 'o', reason: 'gone' },
  { type: 'remove-network', network: 'hepto-old', reason: 'unused' },
];

describe('runtime/apply', () => {
  it('performs the actions in order; a wait is only said, never sent to Podman', async () => {
    const calls: string[] = [];
    const done = await applyActions(ACTIONS, ctx(calls));
    assert.deepEqual(calls, ['ensure-link', 'restart hepto-n1-k3s', 'remove hepto-old-k3s', 'remove-network hepto-old']);
    assert.deepEqual(done, ['ensure-link hepto-n1-wesher', 'restart hepto-n1-k3s', 'remove hepto-old-k3s', 'remove-network hepto-old']);
  });

  it('a run told to stop (it outlived its timeout) stops between two actions', async () => {
    const calls: string[] = [];
    const done = await applyActions(
      ACTIONS,
      ctx(calls, () => calls.length >= 2),
    );
    assert.deepEqual(calls, ['ensure-link', 'restart hepto-n1-k3s'], 'nothing after the stop');
    assert.equal(done.length, 2);
  });

  it('a failed link set-up is recorded with a backoff and its error, for the planner and status', async () => {
    const calls: string[] = [];
    const c = ctx(calls);
    c.links = { ensure: async () => Promise.reject(new Error('Unknown device type')) } as unknown as OverlayLinks;
    await applyActions([ACTIONS[1]], c);
    const h = c.history.links!.n1;
    assert.equal(h.failures, 1);
    assert.ok(h.nextAt > 0);
    assert.match(h.lastError!, /Unknown device type/);
  });
});
