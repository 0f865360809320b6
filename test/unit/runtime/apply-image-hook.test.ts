/**
 * Image pulls and their failures reach the metrics (issue 15): applyActions
 * tells its `image` hook of each pull, ok or failed.
 */
import assert from 'node:assert/strict';
import { applyActions } from '../../../agent/runtime/apply';
import { DEFAULT_BACKOFF } from '../../../agent/runtime/backoff';
import type { OverlayLinks } from '../../../agent/runtime/overlay-link';
import { emptyHistory } from '../../../agent/runtime/planner';
import type { PodmanClient } from '../../../agent/runtime/podman-client';
import { memoryLogger } from '../../helpers/memory-logger';

describe('runtime/apply: image hook', () => {
  it('tells each pull, ok or failed', async () => {
    const seen: string[] = [];
    const client = {
      pull: async (image: string) => {
        if (image.includes('bad')) throw new Error('manifest unknown');
      },
    } as unknown as PodmanClient;
    await applyActions(
      [
        { type: 'pull', image: 'registry.example/good:1' },
        { type: 'pull', image: 'registry.example/bad:1' },
      ],
      {
        client,
        links: {} as OverlayLinks,
        history: emptyHistory(),
        logger: memoryLogger().logger,
        now: () => 0,
        policy: DEFAULT_BACKOFF,
        random: () => 0.5,
        image: (how, ok) => seen.push(`${how} ${ok ? 'ok' : 'failed'}`),
      },
    );
    assert.deepEqual(seen, ['pull ok', 'pull failed']);
  });
});
