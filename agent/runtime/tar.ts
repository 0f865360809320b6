/**
 * A minimal ustar writer for image build contexts: regular files only, owned
 * by root, fixed mtime (so the same inputs give the same bytes). Names must
 * fit ustar's 100-byte name field; that is all a build context of a few
 * files needs.
 */

export interface TarFile {
  name: string;
  data: Buffer;
  /** Permission bits, e.g. 0o755. Default 0o644. */
  mode?: number;
  /** Seconds since the epoch. Default 0. */
  mtime?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the trailing NUL.
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`tar: ${value} does not fit a ${width}-byte field`);
  return s.padStart(width - 1, '0') + '\0';
}

function header(f: TarFile): Buffer {
  const name = Buffer.from(f.name, 'utf8');
  if (name.length === 0 || name.length > 100) throw new Error(`tar: file name must be 1 to 100 bytes: ${f.name}`);
  if (f.name.includes('\0')) throw new Error('tar: file name contains NUL');
  const h = Buffer.alloc(BLOCK, 0);
  name.copy(h, 0);
  h.write(octal(f.mode ?? 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(f.data.length, 12), 124, 'ascii');
  h.write(octal(f.mtime ?? 0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii'); // six digits, NUL, space
  return h;
}

/** An uncompressed tar archive holding `files`, in order. */
export function tarArchive(files: TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(header(f), f.data);
    const pad = (BLOCK - (f.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0)); // end of archive
  return Buffer.concat(parts);
}
