/**
 * How the daemon reads the state it keeps beside its config (known peers,
 * admissions, removals, rotated keys, the name ledger): none of it is worth
 * refusing to start over. A missing file is a first start. One that cannot be
 * read is said in the log and counts as none. One that is damaged (`parse`
 * throws) is said and counts as none too, and is set aside as
 * `<file>.corrupt-<ms>` for a human to look at, unless told to leave it.
 */
import { promises as fs } from 'fs';
import { errnoCode, errorMessage } from '../../shared/errors';
import type { Logger } from '../../shared/log';

export interface StateFileWords {
  /** The log line when the file exists but cannot be read. */
  unreadable: string;
  /** The log line when it is damaged. */
  damaged: string;
  /** A damaged file is an error (default: a warning). */
  damagedIsError?: boolean;
  /** Leave a damaged file where it is (default: set it aside). */
  keepDamaged?: boolean;
}

export async function loadStateFile<T>(file: string, logger: Logger, words: StateFileWords, parse: (text: string) => T): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') logger.warn(words.unreadable, { file, error: errorMessage(e) });
    return undefined;
  }
  try {
    return parse(text);
  } catch (e) {
    let where = file;
    if (!words.keepDamaged) {
      where = `${file}.corrupt-${Date.now()}`;
      await fs.rename(file, where).catch(() => undefined);
    }
    (words.damagedIsError ? logger.error : logger.warn).call(logger, words.damaged, { file: where, error: errorMessage(e) });
    return undefined;
  }
}
