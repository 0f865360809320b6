import { promises as fs, openSync, writeSync, fsyncSync, closeSync, renameSync, mkdirSync, unlinkSync } from 'fs';
import * as path from 'path';
import { HeptoError, errnoCode } from './errors';

export interface AtomicWriteOptions {
  /** File mode, 0o600 for anything holding secrets. */
  mode?: number;
}

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
}

function wrap(file: string, e: unknown): HeptoError {
  const code = errnoCode(e);
  if (code === 'ENOSPC') {
    return new HeptoError('DISK_FULL', `cannot write ${file}: the disk is full`, {
      hint: 'free space on that filesystem; the previous version of the file is kept',
    });
  }
  return new HeptoError('STATE_UNWRITABLE', `cannot write ${file}: ${code ?? String(e)}`, {
    hint: 'check that the directory exists and is writable by the agent (root)',
  });
}

/** Writes temp file, fsyncs it, renames over the target, fsyncs the directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const tmp = tempName(file);
  try {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fh = await fs.open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    const dir = await fs.open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    throw wrap(file, e);
  }
}

/** Synchronous twin, for start-up paths and exit handlers. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const mode = opts.mode ?? 0o644;
  const tmp = tempName(file);
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dfd = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw wrap(file, e);
  }
}
