import {
  promises as fs,
  constants as C,
  openSync,
  writeSync,
  fsyncSync,
  fchmodSync,
  closeSync,
  renameSync,
  mkdirSync,
  unlinkSync,
  lstatSync,
  statSync,
  readFileSync,
} from 'fs';
import * as path from 'path';
import { HeptoError, errnoCode } from './errors';

export interface AtomicWriteOptions {
  /** File mode, 0o600 for anything holding secrets. */
  mode?: number;
}

/**
 * Temp files: `.<name>.<pid>.<ms>.tmp` next to the target. Created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and the final mode, so a file or symlink already
 * there (left over, or planted) is never reused or followed: the write fails
 * instead, and the content is never in a file that others can read.
 * A process killed mid-write leaves its temp file behind (for identity.json,
 * a copy of the private key): sweepTempFiles removes those.
 */
const TEMP_RE = /^\.(.+)\.([1-9][0-9]{0,9})\.([0-9]{10,16})\.tmp$/;

/** Open flags of a temp file: never an existing file, never through a symlink. */
export const TEMP_OPEN_FLAGS = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

/** Strictly increasing per process, so two writes in the same millisecond get different names. */
let lastStamp = 0;
function stamp(): number {
  const now = Date.now();
  lastStamp = now > lastStamp ? now : lastStamp + 1;
  return lastStamp;
}

/** Temp files this process is writing right now (the sweep leaves them alone). */
const inFlight = new Set<string>();

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${stamp()}.tmp`);
}

/** Where a write failed: before the rename the target is untouched, after it the new content is in place. */
interface FailureContext {
  tmp: string;
  /** Did the target exist (as the previous version) when the write failed? */
  previous: boolean;
  renamed: boolean;
}

function describeCode(code: string | undefined, e: unknown): string {
  switch (code) {
    case 'EROFS':
      return 'the filesystem is read-only (EROFS)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'ENOTDIR':
      return 'a part of its directory path is not a directory (ENOTDIR)';
    case 'EISDIR':
      return 'it is a directory (EISDIR)';
    case undefined:
      return e instanceof Error ? e.message : String(e);
    default:
      return code;
  }
}

function wrap(file: string, e: unknown, ctx: FailureContext): HeptoError {
  if (e instanceof HeptoError) return e;
  const code = errnoCode(e);
  const kept = ctx.renamed
    ? 'the new version is in place but may not survive a crash'
    : ctx.previous
      ? 'the previous version of the file is kept'
      : 'the file was not created';
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new HeptoError('DISK_FULL', `cannot write ${file}: the disk is full${code === 'EDQUOT' ? ' (quota)' : ''}`, {
      hint: `free space on that filesystem; ${kept}`,
      cause: e,
    });
  }
  if (!ctx.renamed && (code === 'EEXIST' || code === 'ELOOP')) {
    return new HeptoError('STATE_UNWRITABLE', `cannot write ${file}: its temporary file ${ctx.tmp} already exists`, {
      hint: `something else created it (perhaps as a symlink), and the agent does not write through it; remove it if no agent is writing; ${kept}`,
      cause: e,
    });
  }
  let hint: string;
  if (code === 'EROFS') {
    hint = `remount that filesystem read-write, or move the agent's state (storage_base) to a writable one; ${kept}`;
  } else if (code === 'EACCES' || code === 'EPERM') {
    hint = `the agent must run as root, and the directory must be writable by it (not a root-squashed network share); ${kept}`;
  } else {
    hint = `check that the directory exists and is writable by the agent (root); ${kept}`;
  }
  return new HeptoError('STATE_UNWRITABLE', `cannot write ${file}: ${describeCode(code, e)}`, { hint, cause: e });
}

/** Did `file` exist when the write failed (so the previous version is kept)? */
async function existsNow(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}

function existsNowSync(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * `mkdir -p` that reports the real reason: Node's recursive mkdir says ENOENT
 * where a parent cannot be created on a read-only filesystem (EROFS).
 * Throws the fs error (with its code) for the component that failed.
 */
export async function makeDir(dir: string, mode = 0o700): Promise<void> {
  try {
    await fs.mkdir(dir, { mode });
    return;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') {
      if ((await fs.stat(dir)).isDirectory()) return;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR' });
    }
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
    await makeDir(parent, mode);
  }
  await fs.mkdir(dir, { mode }).catch(async (e: unknown) => {
    if (errnoCode(e) !== 'EEXIST' || !(await fs.stat(dir)).isDirectory()) throw e;
  });
}

export function makeDirSync(dir: string, mode = 0o700): void {
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') {
      if (statSync(dir).isDirectory()) return;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR' });
    }
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
    makeDirSync(parent, mode);
  }
  try {
    mkdirSync(dir, { mode });
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST' || !statSync(dir).isDirectory()) throw e;
  }
}

/** Writes temp file, fsyncs it, renames over the target, fsyncs the directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const tmp = tempName(file);
  let created = false;
  let renamed = false;
  inFlight.add(tmp);
  try {
    await makeDir(path.dirname(file), 0o700);
    const fh = await fs.open(tmp, TEMP_OPEN_FLAGS, mode);
    created = true;
    try {
      // The mode was applied at creation (minus the umask); this makes it exact.
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    renamed = true;
    const dir = await fs.open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    // Only ever remove a temp file this call created: one that was already there is not ours.
    if (created && !renamed) await fs.unlink(tmp).catch(() => undefined);
    throw wrap(file, e, { tmp, renamed, previous: renamed || (await existsNow(file)) });
  } finally {
    inFlight.delete(tmp);
  }
}

/** Synchronous twin, for start-up paths and exit handlers. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const mode = opts.mode ?? 0o644;
  const tmp = tempName(file);
  let created = false;
  let renamed = false;
  try {
    makeDirSync(path.dirname(file), 0o700);
    const fd = openSync(tmp, TEMP_OPEN_FLAGS, mode);
    created = true;
    try {
      fchmodSync(fd, mode);
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    renamed = true;
    const dfd = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (e) {
    if (created && !renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
    throw wrap(file, e, { tmp, renamed, previous: renamed || existsNowSync(file) });
  }
}

/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every mainstream arch). */
const USER_HZ = 100;
/** Error allowed when comparing a process's start with a temp file's stamp (btime is whole seconds). */
const START_SLACK_MS = 2_000;

/** When process `pid` started, ms since the epoch, from /proc; undefined if unknown. */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[19]); // field 22, starttime
    const btimeLine = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('btime '));
    const btime = Number(btimeLine?.slice(6));
    if (!Number.isFinite(ticks) || !Number.isFinite(btime) || btime <= 0) return undefined;
    return btime * 1000 + (ticks * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/**
 * Could the writer of a temp file named with `pid` and `ms` still be writing it?
 * This process: only while the write is in flight. Another pid: if it is alive
 * and started before the name's stamp (a pid reused since, e.g. after a
 * reboot, belongs to a process that started later).
 */
function writerMayBeAlive(tmp: string, pid: number, ms: number): boolean {
  if (pid === process.pid) return inFlight.has(tmp);
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (errnoCode(e) === 'ESRCH') return false;
    // EPERM: alive, owned by someone else.
  }
  const started = processStartMs(pid);
  if (started !== undefined && started > ms + START_SLACK_MS) return false;
  return true;
}

/**
 * Removes the temp files that writeFileAtomic left in `dir` (not below it)
 * when its process died mid-write (kill -9, power loss): only regular files
 * whose name is exactly `.<name>.<pid>.<ms>.tmp`, and only when process <pid>
 * is gone (or is a later process that reused the pid, or is this process and
 * not writing that file now). Returns the paths removed. A missing directory
 * removes nothing; a file that cannot be removed is passed to `onError` (if
 * given) and left, and the sweep goes on.
 */
export async function sweepTempFiles(dir: string, onError?: (file: string, error: HeptoError) => void): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    onError?.(dir, new HeptoError('STATE_UNWRITABLE', `cannot list ${dir} to remove left-over temporary files: ${describeCode(code, e)}`, { cause: e }));
    return [];
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    const m = TEMP_RE.exec(name);
    if (!m) continue;
    const tmp = path.join(dir, name);
    if (writerMayBeAlive(tmp, Number(m[2]), Number(m[3]))) continue;
    try {
      if (!(await fs.lstat(tmp)).isFile()) continue;
      await fs.unlink(tmp);
      removed.push(tmp);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') continue;
      onError?.(
        tmp,
        new HeptoError('STATE_UNWRITABLE', `cannot remove the left-over temporary file ${tmp}: ${describeCode(code, e)}`, {
          hint: 'it may hold a copy of a secret: remove it by hand',
          cause: e,
        }),
      );
    }
  }
  return removed;
}
