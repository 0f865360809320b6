/**
 * The agent's runtime half on its own, for the self-heal bench's idle
 * RSS/CPU figure: a Supervisor (system clock, default 30 s cron safety net)
 * supervising the one node described by the config JSON given as argv[2].
 * Prints "ready" once both containers run; stops on SIGTERM.
 */
import fs from 'fs';
import { systemClock } from '../shared/clock';
import type { HeptoConfig } from '../shared/config/types';
import { createLogger } from '../shared/log';
import { Supervisor } from '../agent/runtime/supervisor';

async function main(): Promise<void> {
  const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as HeptoConfig;
  const sup = new Supervisor({ config, clock: systemClock, logger: createLogger({ level: 'warn' }) });
  sup.setCluster({ members: [] });
  let said = false;
  sup.onChange(() => {
    const st = sup.status();
    if (!said && st.containers.length > 0 && st.containers.every((c) => c.state === 'running')) {
      said = true;
      process.stdout.write('ready\n');
    }
  });
  await sup.start();
  process.once('SIGTERM', () => {
    void sup.stop().then(() => process.exit(0));
  });
}

main().catch((e) => {
  process.stderr.write(`selfheal-agent: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
