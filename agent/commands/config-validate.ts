import { loadConfig } from '../../shared/config/load';
import { configPath, type Command } from './types';

/**
 * `hepto-agent config validate`: exit 0 with a one-line summary (plus
 * warnings), or exit 1 with every problem on its own line (the thrown
 * HeptoError's details, printed by cli.ts). Never prints a key.
 */
export const configValidate: Command = async (ctx) => {
  const path = configPath(ctx);
  const { config, warnings } = await loadConfig(path);
  const anchors = config.anchors.length;
  const extra = config.nodes.length > 0 ? `, ${config.nodes.length} more hosted node${config.nodes.length === 1 ? '' : 's'}` : '';
  ctx.stdout(
    `config OK: ${path} (node ${config.node}, master ${config.master}, ${anchors} anchor${anchors === 1 ? '' : 's'}, runtime ${config.runtime}${extra})`,
  );
  for (const w of warnings) ctx.stderr(`warning: ${w}`);
  return 0;
};
