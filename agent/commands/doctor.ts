import { loadConfig } from '../../shared/config/load';
import { runChecks, formatResult } from '../doctor/checks';
import { realProbes } from '../doctor/real-probes';
import { configPath, type Command } from './types';

/**
 * `hepto-agent doctor [--json] [--config PATH]`: pre-flight checks, one line
 * each with the fix for anything wrong. Exit 0 when nothing failed (warnings
 * allowed), 1 otherwise. An invalid config is reported like `config validate`.
 */
export const doctor: Command = async (ctx) => {
  const file = configPath(ctx);
  const { config } = await loadConfig(file);
  const results = await runChecks(config, file, realProbes());
  if (ctx.flags.json) {
    ctx.stdout(JSON.stringify(results, null, 2));
  } else {
    for (const r of results) ctx.stdout(formatResult(r));
    const failed = results.filter((r) => r.status === 'fail').length;
    const warned = results.filter((r) => r.status === 'warn').length;
    ctx.stdout(
      failed === 0
        ? `doctor: all checks passed${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}`
        : `doctor: ${failed} check${failed > 1 ? 's' : ''} failed`,
    );
  }
  return results.some((r) => r.status === 'fail') ? 1 : 0;
};
