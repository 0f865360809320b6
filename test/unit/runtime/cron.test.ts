/**
 * node-cron, the parts the supervisor uses (agent/runtime/cron.ts): in a
 * fresh Node process, a scheduled task runs and stops, a bad expression is
 * refused, and neither loads node-cron's index nor its scheduler of
 * child-process tasks.
 */
import assert from 'node:assert/strict';
import { inFreshNode } from '../../helpers/fresh-node';
import { validCron } from '../../../agent/runtime/cron';

const LOADED = "Object.keys(require.cache).filter((k) => k.includes('/node-cron/src/')).map((k) => k.split('/node-cron/src/').pop()).sort()";

describe('runtime/cron: node-cron, the parts the supervisor uses', () => {
  it('runs a task every second until stopped, loading neither the index nor the child-process scheduler', () => {
    const r = inFreshNode(`
      const { scheduleCron } = require('./agent/runtime/cron');
      let runs = 0;
      const task = scheduleCron('* * * * * *', () => runs++);
      setTimeout(() => {
        task.stop();
        const seen = runs;
        setTimeout(() => console.log(JSON.stringify({ seen, after: runs, loaded: ${LOADED} })), 1500);
      }, 2500);
    `);
    assert.ok((r.seen as number) >= 1, `ran ${String(r.seen)} times in 2.5 s`);
    assert.equal(r.after, r.seen, 'no run after stop()');
    const loaded = r.loaded as string[];
    assert.ok(loaded.includes('scheduled-task.js'), loaded.join(' '));
    assert.ok(!loaded.includes('node-cron.js'), 'the index was loaded');
    assert.ok(!loaded.some((f) => f.startsWith('background-scheduled-task')), 'the child-process scheduler was loaded');
  });

  it('the package index loads the child-process scheduler (the test above can fail)', () => {
    const r = inFreshNode(`require('node-cron'); console.log(JSON.stringify({ loaded: ${LOADED} }));`);
    assert.ok(
      (r.loaded as string[]).some((f) => f.startsWith('background-scheduled-task')),
      String(r.loaded),
    );
  });

  it('takes the expressions node-cron takes, and refuses the others', () => {
    assert.equal(validCron('*/30 * * * * *'), true);
    assert.equal(validCron('0 * * * *'), true);
    assert.equal(validCron('61 * * * * *'), false);
    assert.equal(validCron('every minute'), false);
  });
});
