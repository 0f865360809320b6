import { strict as assert } from 'assert';
import { createLogger, registerSecret } from '../../../shared/log';
import { memoryLogger } from '../../helpers/memory-logger';

describe('logger', () => {
  it('json: one object per line with level, module and context', () => {
    const { logger, lines } = memoryLogger('info', 'json');
    logger.child('gossip').info('member alive', { member: 'alpha', incarnation: 3 });
    logger.debug('hidden');
    assert.equal(lines.length, 1);
    const o = JSON.parse(lines[0]);
    assert.deepEqual([o.level, o.module, o.msg, o.member, o.incarnation], ['info', 'agent.gossip', 'member alive', 'alpha', 3]);
  });

  it('plain: key=value fields, quoted when needed, never a newline inside an event', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'plain', sink: (l) => lines.push(l), syslogPrefix: true });
    log.warn('refused\npeer', { remote: '127.0.0.9:1', reason: 'bad key here' });
    assert.equal(lines.length, 1);
    assert.equal(lines[0], '<4>warn agent: refused\\npeer remote=127.0.0.9:1 reason="bad key here"');
  });

  it('redacts fields named like keys and scrubs registered secrets anywhere', () => {
    const secret = 'S3cretOverlayKeyValue0123456789A';
    registerSecret(secret);
    const { logger, lines } = memoryLogger();
    logger.error(`oops ${secret}`, { overlay_key: 'whatever', cluster_key: 'x', nested: { note: `has ${secret}` }, list: [secret] });
    const text = lines.join('\n');
    assert.ok(!text.includes(secret));
    assert.ok(!text.includes('whatever'));
    const o = JSON.parse(lines[0]);
    assert.equal(o.overlay_key, '[redacted]');
    assert.equal(o.nested.note, 'has [redacted]');
  });
});
