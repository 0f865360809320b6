import { strict as assert } from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import fsMod = require('fs');
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  lstatSync,
  rmSync,
  chmodSync,
  writeFileSync,
  symlinkSync,
  mkdirSync,
  openSync,
  closeSync,
  fstatSync,
  existsSync,
  constants as C,
} from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic, writeFileAtomicSync, sweepTempFiles } from '../../../shared/atomic-write';
import { HeptoError } from '../../../shared/errors';
import { DIST, deadPid, mountTmpfs, runAsNobody, type Tmpfs } from './fs-fixtures';

const SECRET = 'SECRET-KEY-MATERIAL-0123456789abcdef';

/** Stubs Date.now so the next temp name is predictable: `.${base}.${pid}.${T}.tmp`. */
let bump = 0;
async function withFixedNowAsync<T>(fn: (t: number) => Promise<T>): Promise<T> {
  const real = Date.now;
  const t = real() + 10_000_000 + ++bump * 1000;
  Date.now = () => t;
  try {
    return await fn(t);
  } finally {
    Date.now = real;
  }
}

function tmpNames(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.tmp'));
}

describe('atomic write', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-aw-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes with the requested mode and leaves no temp file', async () => {
    const f = path.join(dir, 'sub', 'state.json');
    await writeFileAtomic(f, '{"a":1}', { mode: 0o600 });
    assert.equal(readFileSync(f, 'utf8'), '{"a":1}');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(path.dirname(f)), ['state.json']);
    writeFileAtomicSync(f, 'two', { mode: 0o600 });
    assert.equal(readFileSync(f, 'utf8'), 'two');
  });

  it('keeps the old content and says what to do when the directory is not writable', async function () {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; use a path under a regular file instead
      const f = path.join(dir, 'file');
      await writeFileAtomic(f, 'old');
      await assert.rejects(writeFileAtomic(path.join(f, 'child'), 'x'), (e: unknown) => e instanceof HeptoError && /cannot write/.test(e.message));
      assert.equal(readFileSync(f, 'utf8'), 'old');
      return;
    }
    const f = path.join(dir, 'state');
    await writeFileAtomic(f, 'old');
    chmodSync(dir, 0o500);
    await assert.rejects(writeFileAtomic(f, 'new'), HeptoError);
    chmodSync(dir, 0o700);
    assert.equal(readFileSync(f, 'utf8'), 'old');
  });

  describe('temp file opens (issue 14 item 9)', () => {
    it('opens the temp file with O_CREAT|O_EXCL|O_NOFOLLOW and the final mode, 0600 before any byte is in it', async () => {
      const seen: { how: string; flags: unknown; mode: unknown; modeAtOpen: number; sizeAtOpen: number }[] = [];
      const promises = fsMod.promises as { open: typeof fsMod.promises.open };
      const realOpen = promises.open;
      const realOpenSync = fsMod.openSync;
      const isTemp = (p: unknown): boolean => typeof p === 'string' && p.endsWith('.tmp');
      const oldUmask = process.umask(0); // the mode given at creation must do it, not the umask
      promises.open = (async (p: fsMod.PathLike, flags?: string | number, mode?: fsMod.Mode) => {
        const fh = await realOpen(p, flags, mode);
        if (isTemp(p)) {
          const st = await fh.stat();
          seen.push({ how: 'async', flags, mode, modeAtOpen: st.mode & 0o777, sizeAtOpen: st.size });
        }
        return fh;
      }) as typeof promises.open;
      (fsMod as { openSync: typeof fsMod.openSync }).openSync = ((p: fsMod.PathLike, flags?: fsMod.OpenMode, mode?: fsMod.Mode | null) => {
        const fd = realOpenSync(p, flags as fsMod.OpenMode, mode);
        if (isTemp(p)) {
          const st = fstatSync(fd);
          seen.push({ how: 'sync', flags, mode, modeAtOpen: st.mode & 0o777, sizeAtOpen: st.size });
        }
        return fd;
      }) as typeof fsMod.openSync;
      try {
        await writeFileAtomic(path.join(dir, 'a.json'), SECRET, { mode: 0o600 });
        writeFileAtomicSync(path.join(dir, 'b.json'), SECRET, { mode: 0o600 });
      } finally {
        promises.open = realOpen;
        (fsMod as { openSync: typeof fsMod.openSync }).openSync = realOpenSync;
        process.umask(oldUmask);
      }
      assert.deepEqual(
        seen.map((s) => s.how),
        ['async', 'sync'],
      );
      for (const s of seen) {
        assert.equal(typeof s.flags, 'number', `${s.how}: numeric open flags, got ${String(s.flags)}`);
        const flags = s.flags as number;
        for (const [name, bit] of [
          ['O_CREAT', C.O_CREAT],
          ['O_EXCL', C.O_EXCL],
          ['O_NOFOLLOW', C.O_NOFOLLOW],
          ['O_WRONLY', C.O_WRONLY],
        ] as const) {
          assert.ok((flags & bit) === bit, `${s.how}: ${name} set`);
        }
        assert.equal(flags & C.O_TRUNC, 0, `${s.how}: no O_TRUNC (never an existing file)`);
        assert.equal(s.mode, 0o600, `${s.how}: mode given at creation`);
        assert.equal(s.modeAtOpen, 0o600, `${s.how}: 0600 from the start, even with umask 0`);
        assert.equal(s.sizeAtOpen, 0, `${s.how}: a new, empty file`);
      }
      assert.deepEqual(tmpNames(dir), []);
    });

    for (const how of ['async', 'sync'] as const) {
      const write = (f: string, data: string): Promise<void> =>
        how === 'async' ? writeFileAtomic(f, data, { mode: 0o600 }) : Promise.resolve().then(() => writeFileAtomicSync(f, data, { mode: 0o600 }));

      it(`${how}: a symlink planted at the temp path makes the write fail; it is not followed`, async () => {
        const f = path.join(dir, 'state.json');
        writeFileSync(f, 'old', { mode: 0o600 });
        const victim = path.join(dir, 'victim');
        writeFileSync(victim, 'victim', { mode: 0o644 });
        await withFixedNowAsync(async (t) => {
          const tmp = path.join(dir, `.state.json.${process.pid}.${t}.tmp`);
          symlinkSync(victim, tmp);
          await assert.rejects(write(f, SECRET), (e: unknown) => {
            assert.ok(e instanceof HeptoError, String(e));
            assert.equal(e.code, 'STATE_UNWRITABLE');
            assert.ok(e.message.includes(f), e.message);
            assert.match(e.describe(), /already exists/);
            assert.ok(!e.describe().includes(SECRET));
            return true;
          });
          assert.ok(lstatSync(tmp).isSymbolicLink(), 'the planted link is left alone');
        });
        assert.equal(readFileSync(victim, 'utf8'), 'victim', 'nothing written through the link');
        assert.equal(readFileSync(f, 'utf8'), 'old', 'the previous version is kept');
        assert.ok(lstatSync(f).isFile());
      });

      it(`${how}: a file already at the temp path (world-readable, held open by someone) is never reused`, async () => {
        const f = path.join(dir, 'identity.json');
        await withFixedNowAsync(async (t) => {
          const tmp = path.join(dir, `.identity.json.${process.pid}.${t}.tmp`);
          writeFileSync(tmp, '', { mode: 0o644 });
          chmodSync(tmp, 0o644);
          const spy = openSync(tmp, 'r');
          try {
            await assert.rejects(write(f, SECRET), (e: unknown) => e instanceof HeptoError && /already exists/.test(e.message));
            assert.equal(readFileSync(spy, 'utf8'), '', 'the secret never went into the planted file');
          } finally {
            closeSync(spy);
          }
          assert.ok(existsSync(tmp), 'a temp file this write did not create is not removed by it');
        });
        assert.ok(!existsSync(f));
      });
    }

    it('two writes of one file in the same millisecond both succeed (distinct temp names)', async () => {
      const f = path.join(dir, 'peers.json');
      await withFixedNowAsync(async () => {
        await Promise.all([writeFileAtomic(f, 'one'), writeFileAtomic(f, 'two'), writeFileAtomic(f, 'three')]);
        writeFileAtomicSync(f, 'four');
        writeFileAtomicSync(f, 'five');
      });
      assert.equal(readFileSync(f, 'utf8'), 'five');
      assert.deepEqual(tmpNames(dir), []);
    });
  });

  describe('messages (issue 14 item 9)', function () {
    this.timeout(20_000);
    let fsys: Tmpfs | undefined;
    afterEach(() => {
      fsys?.cleanup();
      fsys = undefined;
    });

    for (const how of ['async', 'sync'] as const) {
      const write = (f: string, data: string | Uint8Array): Promise<void> =>
        how === 'async' ? writeFileAtomic(f, data, { mode: 0o600 }) : Promise.resolve().then(() => writeFileAtomicSync(f, data, { mode: 0o600 }));

      it(`${how}: DISK_FULL with a previous version says it is kept, and it is`, async () => {
        fsys = mountTmpfs(64);
        const f = path.join(fsys.dir, 'peers.json');
        await write(f, 'old');
        await assert.rejects(write(f, Buffer.alloc(256 * 1024, 'x')), (e: unknown) => {
          assert.ok(e instanceof HeptoError);
          assert.equal(e.code, 'DISK_FULL');
          assert.ok(e.message.includes(f), e.message);
          assert.match(e.hint ?? '', /free space/);
          assert.match(e.hint ?? '', /previous version of the file is kept/);
          return true;
        });
        assert.equal(readFileSync(f, 'utf8'), 'old');
        assert.deepEqual(tmpNames(fsys.dir), [], 'the partial temp file is removed');
      });

      it(`${how}: DISK_FULL without a previous version does not promise one`, async () => {
        fsys = mountTmpfs(64);
        const f = path.join(fsys.dir, 'keys.json');
        await assert.rejects(write(f, Buffer.alloc(256 * 1024, 'x')), (e: unknown) => {
          assert.ok(e instanceof HeptoError);
          assert.equal(e.code, 'DISK_FULL');
          assert.ok(e.message.includes(f), e.message);
          assert.doesNotMatch(e.describe(), /previous version/);
          assert.match(e.hint ?? '', /not created/);
          return true;
        });
        assert.ok(!existsSync(f));
        assert.deepEqual(tmpNames(fsys.dir), []);
      });

      it(`${how}: a read-only filesystem is reported as such (EROFS, not ENOENT), naming the file and what to do`, async () => {
        fsys = mountTmpfs(256);
        const existing = path.join(fsys.dir, 'admission.json');
        await write(existing, 'old');
        fsys.readOnly();
        for (const f of [existing, path.join(fsys.dir, 'new.json'), path.join(fsys.dir, 'srv', 'node1', 'peers.json')]) {
          await assert.rejects(write(f, 'new'), (e: unknown) => {
            assert.ok(e instanceof HeptoError);
            assert.equal(e.code, 'STATE_UNWRITABLE');
            assert.ok(e.message.includes(f), e.message);
            assert.match(e.message, /read-only \(EROFS\)/);
            assert.doesNotMatch(e.describe(), /ENOENT/);
            assert.match(e.hint ?? '', /remount .* read-write|storage_base/);
            if (f === existing) assert.match(e.hint ?? '', /previous version of the file is kept/);
            else assert.doesNotMatch(e.hint ?? '', /previous version/);
            return true;
          });
        }
        assert.equal(readFileSync(existing, 'utf8'), 'old');
      });
    }

    it('permission denied (EACCES) is reported as such, naming the file and what to do', () => {
      // root ignores modes, so the writer runs as nobody
      chmodSync(dir, 0o755);
      const sub = path.join(dir, 'state');
      mkdirSync(sub, { mode: 0o755 });
      const out = runAsNobody(`
        const { writeFileAtomic, writeFileAtomicSync } = require(${JSON.stringify(path.join(DIST, 'shared', 'atomic-write.js'))});
        const res = [];
        const show = (e) => ({ code: e.code, message: e.message, hint: e.hint });
        try { writeFileAtomicSync(${JSON.stringify(path.join(sub, 'peers.json'))}, 'x'); res.push(null); } catch (e) { res.push(show(e)); }
        writeFileAtomic(${JSON.stringify(path.join(sub, 'deeper', 'keys.json'))}, 'x').then(() => res.push(null), (e) => res.push(show(e)))
          .then(() => process.stdout.write(JSON.stringify(res)));
      `) as ({ code: string; message: string; hint: string } | null)[];
      assert.equal(out.length, 2);
      for (const [i, f] of [path.join(sub, 'peers.json'), path.join(sub, 'deeper', 'keys.json')].entries()) {
        const e = out[i];
        assert.ok(e, `write ${i} failed`);
        assert.equal(e.code, 'STATE_UNWRITABLE');
        assert.ok(e.message.includes(f), e.message);
        assert.match(e.message, /permission denied \(EACCES\)/);
        assert.match(e.hint, /root/);
        assert.doesNotMatch(e.hint, /previous version/);
      }
    });
  });

  describe('sweepTempFiles (issue 14 item 9)', function () {
    this.timeout(30_000);
    const children: ChildProcess[] = [];
    afterEach(() => {
      for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });

    async function liveChild(): Promise<ChildProcess> {
      const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
      children.push(c);
      await new Promise((r) => c.once('spawn', r));
      await new Promise((r) => setTimeout(r, 50));
      return c;
    }

    it('removes only its own temp files whose writer is gone, and returns them', async () => {
      const dead = await deadPid();
      const live = await liveChild();
      const now = Date.now();
      const plant = (name: string): string => {
        const p = path.join(dir, name);
        writeFileSync(p, SECRET, { mode: 0o600 });
        return p;
      };
      const stale = [
        plant(`.identity.json.${dead}.${now - 5000}.tmp`), // writer killed
        plant(`.peers.json.${dead}.${now}.tmp`),
        plant(`.my.state.v2.json.${dead}.${now}.tmp`), // dots and digits in the name
        plant(`.keys.json.${process.pid}.${now - 1000}.tmp`), // this process, not writing it now
        plant(`.admission.json.${live.pid}.${now - 3_600_000}.tmp`), // pid reused by a process started later
      ];
      const kept = [
        plant(`.identity.json.${live.pid}.${now}.tmp`), // a live writer, started before the stamp
        plant('.identity.json.tmp'),
        plant(`identity.json.${dead}.${now}.tmp`),
        plant(`.identity.json.${dead}.${now}.tmp.bak`),
        plant(`.identity.json.x${dead}.${now}.tmp`),
        plant(`.identity.json.${dead}.abc.tmp`),
        plant(`.identity.json.0.${now}.tmp`),
        plant('other-tool.tmp'),
        plant('identity.json'),
      ];
      const link = path.join(dir, `.link.json.${dead}.${now}.tmp`);
      symlinkSync(path.join(dir, 'identity.json'), link);
      const sub = path.join(dir, `.sub.json.${dead}.${now}.tmp`);
      mkdirSync(sub);
      mkdirSync(path.join(dir, 'nested'));
      const nested = path.join(dir, 'nested', `.peers.json.${dead}.${now}.tmp`);
      writeFileSync(nested, SECRET);

      const removed = await sweepTempFiles(dir);
      assert.deepEqual([...removed].sort(), [...stale].sort());
      for (const p of stale) assert.ok(!existsSync(p), `${p} removed`);
      for (const p of [...kept, link, sub, nested]) assert.ok(existsSync(p), `${p} kept`);
      assert.deepEqual(await sweepTempFiles(dir), [], 'nothing left to sweep');
    });

    it('a missing directory sweeps nothing', async () => {
      assert.deepEqual(await sweepTempFiles(path.join(dir, 'none')), []);
    });

    it('never removes the temp file of a write this process has in flight', async () => {
      const f = path.join(dir, 'peers.json');
      const big = Buffer.alloc(2 * 1024 * 1024, 'p');
      let writing = true;
      let swept = 0;
      const sweeper = (async () => {
        while (writing) {
          swept += (await sweepTempFiles(dir)).length;
          await new Promise((r) => setImmediate(r));
        }
      })();
      try {
        for (let i = 0; i < 20; i++) await Promise.all([writeFileAtomic(f, big), writeFileAtomic(path.join(dir, 'keys.json'), big)]);
      } finally {
        writing = false;
        await sweeper;
      }
      assert.equal(swept, 0);
      assert.deepEqual(tmpNames(dir), []);
    });

    it('after a kill -9 mid-write, the left-over temp file holds the secret, is 0600, and the sweep removes it', async () => {
      const f = path.join(dir, 'identity.json');
      const script = `
        process.umask(0);
        const { writeFileAtomic } = require(${JSON.stringify(path.join(DIST, 'shared', 'atomic-write.js'))});
        const data = Buffer.concat([Buffer.from(${JSON.stringify(SECRET)}), Buffer.alloc(8 * 1024 * 1024, 'k')]);
        (async () => { for (;;) await writeFileAtomic(${JSON.stringify(f)}, data, { mode: 0o600 }); })();
      `;
      const holdsSecret = (n: string): boolean => readFileSync(path.join(dir, n)).subarray(0, SECRET.length).toString() === SECRET;
      let leftovers: string[] = [];
      // A kill right after the open leaves an empty temp file; go on until one holds the secret.
      for (let attempt = 0; attempt < 30 && !leftovers.some(holdsSecret); attempt++) {
        const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
        children.push(child);
        const exited = new Promise((r) => child.once('exit', r));
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline && !tmpNames(dir).some((n) => statSync(path.join(dir, n), { throwIfNoEntry: false })?.size)) {
          await new Promise((r) => setImmediate(r));
        }
        child.kill('SIGKILL');
        await exited;
        leftovers = tmpNames(dir);
      }
      assert.ok(leftovers.some(holdsSecret), 'a kill -9 mid-write left a temp file holding a copy of the secret');
      for (const n of leftovers) {
        assert.match(n, /^\.identity\.json\.\d+\.\d+\.tmp$/);
        assert.equal(statSync(path.join(dir, n)).mode & 0o777, 0o600, 'never readable by others, even with umask 0');
      }
      const removed = await sweepTempFiles(dir);
      assert.deepEqual(removed.map((p) => path.basename(p)).sort(), [...leftovers].sort());
      assert.deepEqual(tmpNames(dir), []);
      for (const n of readdirSync(dir)) assert.equal(n, 'identity.json', `only the real file is left, not ${n}`);
    });
  });
});
