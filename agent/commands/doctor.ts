import type { Command } from './types';
import { HeptoError } from '../../shared/errors';

export const doctor: Command = async () => {
  throw new HeptoError('INTERNAL', 'doctor is not built yet', { hint: 'tracked in the installer issue' });
};
