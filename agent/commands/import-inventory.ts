import { promises as fs } from 'fs';
import { inventoryToConfig, parseInventory } from '../../shared/config/inventory';
import { validateConfig } from '../../shared/config/validate';
import { HeptoError, errnoCode } from '../../shared/errors';
import { usageError, type Command } from './types';

const USAGE = 'import-inventory FILE.ini --node NAME > /etc/hepto/hepto.json';

/**
 * `hepto-agent import-inventory FILE.ini --node NAME`: prints that node's
 * JSON config (only what the inventory says; defaults apply when loaded).
 * The result is validated first, so what is printed is a config that loads.
 */
export const importInventory: Command = async (ctx) => {
  const [file, ...extra] = ctx.args;
  if (!file) throw usageError('import-inventory needs the inventory file', USAGE);
  if (extra.length > 0) throw usageError(`import-inventory takes one file, got ${ctx.args.length}`, USAGE);
  const node = ctx.flags.node;
  if (!node) throw usageError('import-inventory needs --node NAME (the node this machine runs)', USAGE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code ?? 'I/O error'})`;
    throw new HeptoError('USAGE', `inventory ${file} ${why}`, { hint: `type hepto-agent ${USAGE} with the path of your inventory.ini` });
  }
  const config = inventoryToConfig(parseInventory(text), node);
  const { problems } = validateConfig(config);
  if (problems.length > 0) {
    throw new HeptoError(
      'CONFIG_INVALID',
      `inventory ${file} gives node ${node} an invalid config (${problems.length} problem${problems.length === 1 ? '' : 's'})`,
      {
        hint: 'fix the inventory, field names as below',
        details: problems,
      },
    );
  }
  ctx.stdout(JSON.stringify(config, null, 2));
  return 0;
};
