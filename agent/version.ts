import { readFileSync } from 'fs';
import * as path from 'path';

/** The agent version, read once from package.json (two levels above dist/agent). */
export const AGENT_VERSION: string = (() => {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(__dirname, rel), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'hepto-agent' && pkg.version) return pkg.version;
    } catch {
      /* try the next location */
    }
  }
  return '0.0.0-unknown';
})();
