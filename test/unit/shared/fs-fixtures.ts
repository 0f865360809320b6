/**
 * Real filesystem failures for the state-file tests. The tests run as root,
 * and chmod does not stop root, so: a small tmpfs for ENOSPC, the same tmpfs
 * remounted read-only for EROFS, and a child process as `nobody` for EACCES.
 * Mounting needs root (CAP_SYS_ADMIN): without it these helpers throw, loudly.
 */
import { execFileSync, spawn, spawnSync } from 'child_process';
import { mkdtempSync, rmSync, rmdirSync } from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface Tmpfs {
  dir: string;
  readOnly(): void;
  cleanup(): void;
}

/** A fresh tmpfs of `sizeKiB`, mounted on a new directory. */
export function mountTmpfs(sizeKiB: number): Tmpfs {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'hepto-test', dir], { stdio: 'pipe' });
  } catch (e) {
    rmdirSync(dir);
    throw new Error(`these tests need to mount a tmpfs (run them as root): ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e)}`);
  }
  return {
    dir,
    readOnly: () => execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' }),
    cleanup: () => {
      const r = spawnSync('umount', [dir], { stdio: 'pipe' });
      if (r.status !== 0) spawnSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Compiled modules, for child processes: dist/shared/atomic-write.js etc. */
export const DIST = path.resolve(__dirname, '..', '..', '..');

/** Runs `script` (CommonJS) in a child node process as uid/gid 65534 (nobody); returns its stdout parsed as JSON. */
export function runAsNobody(script: string): unknown {
  const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`child as nobody failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

/** A pid that was alive a moment ago and is not now. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}
