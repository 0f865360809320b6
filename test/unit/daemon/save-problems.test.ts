import * as assert from 'assert';
import { SaveProblems } from '../../../agent/daemon/save-problems';
import { HeptoError } from '../../../shared/errors';

const KEY = Buffer.alloc(64, 7).toString('base64');

describe('daemon/save-problems (issue 14 item 9)', () => {
  it('has no problems until a save fails', () => {
    const p = new SaveProblems(() => 0);
    assert.deepStrictEqual(p.problems(), []);
    p.ok('/srv/n/peers.json');
    assert.deepStrictEqual(p.problems(), []);
  });

  it('reports the last failed save of each file, naming the file, the error and what to do', () => {
    let now = Date.UTC(2026, 0, 1);
    const p = new SaveProblems(() => now);
    p.failed(
      '/srv/n/peers.json',
      new HeptoError('DISK_FULL', 'cannot write /srv/n/peers.json: the disk is full', {
        hint: 'free space on that filesystem; the previous version of the file is kept',
      }),
    );
    now += 60_000;
    p.failed('/srv/n/keys.json', Object.assign(new Error('EROFS: read-only file system, open ...'), { code: 'EROFS', syscall: 'open' }));
    const lines = p.problems();
    assert.strictEqual(lines.length, 2);
    const [keys, peers] = lines;
    assert.match(keys!, /\/srv\/n\/keys\.json/);
    assert.match(keys!, /open: EROFS/);
    assert.match(keys!, /check the filesystem/);
    assert.match(peers!, /^state not saved: cannot write \/srv\/n\/peers\.json: the disk is full/);
    assert.match(peers!, /free space on that filesystem/);
    assert.match(peers!, /failed once since 2026-01-01T00:00:00\.000Z/);
    for (const l of lines) assert.ok(!l.includes('\n'));
  });

  it('keeps one line per file, counting repeated failures from the first, with the latest error', () => {
    let now = 1_000;
    const p = new SaveProblems(() => now);
    p.failed('/s/peers.json', new HeptoError('STATE_UNWRITABLE', 'cannot write /s/peers.json: permission denied (EACCES)', { hint: 'run as root' }));
    now = 5_000;
    p.failed('/s/peers.json', new HeptoError('DISK_FULL', 'cannot write /s/peers.json: the disk is full', { hint: 'free space' }));
    const lines = p.problems();
    assert.strictEqual(lines.length, 1);
    assert.match(lines[0]!, /the disk is full/);
    assert.doesNotMatch(lines[0]!, /EACCES/);
    assert.match(lines[0]!, /failed 2 times since 1970-01-01T00:00:01\.000Z/);
  });

  it('clears a file on its next successful save, and only that file', () => {
    const p = new SaveProblems(() => 0);
    p.failed('/s/a.json', new Error('boom'));
    p.failed('/s/b.json', new Error('boom'));
    p.ok('/s/a.json');
    assert.deepStrictEqual(p.files(), ['/s/b.json']);
    assert.strictEqual(p.problems().length, 1);
    p.failed('/s/a.json', new Error('again'));
    assert.match(p.problems()[0]!, /\/s\/a\.json.*again.*failed once/);
    p.ok('/s/a.json');
    p.ok('/s/b.json');
    assert.deepStrictEqual(p.problems(), []);
  });

  it('never shows a key, even in the message of an unexpected error, and keeps lines on one line', () => {
    const p = new SaveProblems(() => 0);
    p.failed('/s/identity.json', new Error(`unexpected token in {"private":"${KEY}"}\nsecond line ${KEY}`));
    p.failed('/s/keys.json', `weird\u001b[2J thing ${KEY.slice(0, 44)}`);
    for (const l of p.problems()) {
      assert.ok(!l.includes(KEY.slice(0, 24)), l);
      assert.ok(!l.includes(KEY.slice(24, 48)), l);
      assert.ok(!/[\u0000-\u001f]/.test(l), JSON.stringify(l));
      assert.match(l, /\[redacted\]/);
    }
  });
});
