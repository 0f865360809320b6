import { requestStatus } from '../control/client';
import { loadConfig } from '../../shared/config/load';
import { formatMeshStatus, formatStatus, statusJson, type StatusDoc } from '../../shared/status';
import { configPath, type Command } from './types';

/**
 * `hepto-agent status [--json] [--mesh]`: asks the running agent over its
 * control socket. --mesh: the pair matrix only (connected, RTT, path MTU,
 * as each member sees the others); --json prints the whole document, the
 * matrix in its `mesh` field.
 */
export const status: Command = async (ctx) => {
  const { config } = await loadConfig(configPath(ctx));
  const doc = (await requestStatus(config.control_socket)) as StatusDoc;
  ctx.stdout(ctx.flags.json ? statusJson(doc) : ctx.flags.mesh ? formatMeshStatus(doc) : formatStatus(doc, Date.now()));
  return 0;
};
