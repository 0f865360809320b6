/**
 * Runs HashiCorp memberlist beside the hepto bench, in the same invocation,
 * when it can be built on this machine: bench/memberlist/main.go compiled in
 * GOPATH mode against Debian's packaged sources (golang-go and
 * golang-github-hashicorp-memberlist-dev), which needs no network at build
 * time. The packages are installed only when the user asked for it
 * (--with-memberlist or HEPTO_BENCH_MEMBERLIST=install), never silently.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const GOPATH = '/usr/share/gocode';
const MEMBERLIST_SRC = path.join(GOPATH, 'src/github.com/hashicorp/memberlist');
const APT_PACKAGES = ['golang-go', 'golang-github-hashicorp-memberlist-dev'];

export interface MemberlistRunResult {
  impl: 'memberlist';
  encrypted: boolean;
  n: number;
  run: number;
  joinMs: number;
  crashFirstMs: number;
  crashAllMs: number;
  leaveAllMs: number;
  bytesPerSecPerMember: number;
  memPerMemberKiB: number;
  heapPerMemberKiB: number;
  falseDeaths: number;
  error?: string;
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Why memberlist cannot run here, or null when it can. */
export function memberlistMissing(): string | null {
  if (!which('go')) return 'no Go toolchain (Debian package golang-go)';
  if (!fs.existsSync(path.join(MEMBERLIST_SRC, 'memberlist.go')))
    return `no memberlist sources in ${MEMBERLIST_SRC} (Debian package golang-github-hashicorp-memberlist-dev)`;
  return null;
}

/** apt-get installs Go and memberlist's sources. Only called on the user's explicit request. */
export function installMemberlist(progress: (line: string) => void): void {
  if (process.getuid?.() !== 0) throw new Error(`installing ${APT_PACKAGES.join(' ')} needs root: run it with sudo, or install them yourself`);
  progress(`installing ${APT_PACKAGES.join(' ')} with apt-get (asked for with --with-memberlist)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...APT_PACKAGES], { stdio: 'inherit', env });
}

/** Compiles bench/memberlist into `<repo>/.cache/memberlist-bench` (offline, GOPATH mode); returns the binary's path. */
export function buildMemberlistBench(repoRoot: string): string {
  const src = path.join(repoRoot, 'bench/memberlist');
  const outDir = path.join(repoRoot, '.cache/memberlist-bench');
  fs.mkdirSync(outDir, { recursive: true });
  const bin = path.join(outDir, 'memberlist-bench');
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: src,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOCACHE: path.join(outDir, 'go-build'), GOPROXY: 'off' },
  });
  return bin;
}

export interface MemberlistOptions {
  bin: string;
  sizes: number[];
  runs: number;
  restMs: number;
  settleMs: number;
  timeoutMs: number;
  progress: (line: string) => void;
}

/** Runs the compiled bench; resolves with one result per cluster run. */
export function runMemberlistBench(o: MemberlistOptions): Promise<MemberlistRunResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      o.bin,
      ['-n', o.sizes.join(','), '-runs', String(o.runs), '-enc', `-rest=${o.restMs}ms`, `-settle=${o.settleMs}ms`, `-timeout=${o.timeoutMs}ms`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const results: MemberlistRunResult[] = [];
    let buf = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        try {
          const r = JSON.parse(line) as MemberlistRunResult;
          results.push(r);
          o.progress(
            r.error
              ? `  memberlist N=${r.n} run ${r.run}: ${r.error}`
              : `  memberlist N=${r.n} run ${r.run}: join ${r.joinMs.toFixed(0)} ms, crash all ${r.crashAllMs.toFixed(0)} ms, leave ${r.leaveAllMs.toFixed(0)} ms, ${r.bytesPerSecPerMember.toFixed(0)} B/s`,
          );
        } catch {
          o.progress(`  memberlist printed an unreadable line: ${line.slice(0, 120)}`);
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) o.progress(`  ${line.trim()}`);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(results);
      else reject(new Error(`memberlist bench exited with code ${code} after ${results.length} runs`));
    });
  });
}
