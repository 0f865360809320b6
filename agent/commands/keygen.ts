import { generateKey } from '../../shared/keys';
import type { Command } from './types';

/** `hepto-agent keygen`: one fresh 32-character key of letters and digits on stdout. */
export const keygen: Command = async (ctx) => {
  ctx.stdout(generateKey(32));
  return 0;
};
