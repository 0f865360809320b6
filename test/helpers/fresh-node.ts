/**
 * Runs a script in a fresh Node process (the module cache is per process),
 * from dist/, and returns the JSON object its last line prints: for tests of
 * what loading a module loads.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

const DIST = path.resolve(__dirname, '../..');

export function inFreshNode(script: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['-e', script], { cwd: DIST, encoding: 'utf8', timeout: 30_000, env });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}
