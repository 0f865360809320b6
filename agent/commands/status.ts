import { requestStatus } from '../control/client';
import { loadConfig } from '../../shared/config/load';
import { formatStatus, type StatusDoc } from '../../shared/status';
import { configPath, type Command } from './types';

/** `hepto-agent status [--json]`: asks the running agent over its control socket. */
export const status: Command = async (ctx) => {
  const { config } = await loadConfig(configPath(ctx));
  const doc = (await requestStatus(config.control_socket)) as StatusDoc;
  ctx.stdout(ctx.flags.json ? JSON.stringify(doc, null, 2) : formatStatus(doc, Date.now()));
  return 0;
};
