/**
 * install.sh's functions without its last line (`main "$@"`), to source in a
 * test shell, and a bin directory of stand-in commands to put first on PATH.
 * One per suite: `before` makes it, `after` removes it.
 */
import { strict as assert } from 'assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '../../../..');

export interface InstallSandbox {
  dir: string;
  /** install.sh without `main "$@"`. */
  lib: string;
  /** Stand-in commands. */
  bin: string;
  /** Writes an executable stand-in `name` with this whole text (shebang included). */
  stub(name: string, text: string): void;
  remove(): void;
}

export function installSandbox(prefix: string): InstallSandbox {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const lines = readFileSync(path.join(ROOT, 'install.sh'), 'utf8').trimEnd().split('\n');
  assert.equal(lines.pop(), 'main "$@"');
  const lib = path.join(dir, 'install-lib.sh');
  writeFileSync(lib, lines.join('\n') + '\n');
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  return {
    dir,
    lib,
    bin,
    stub: (name, text) => {
      writeFileSync(path.join(bin, name), text);
      chmodSync(path.join(bin, name), 0o755);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
