/**
 * dockerode, loaded lean (issue 16). At load time dockerode 4 requires its
 * BuildKit session support (`lib/session.js`: @grpc/grpc-js and
 * @grpc/proto-loader, with protobufjs), docker-modem its SSH transport
 * (`lib/ssh.js`: ssh2), dockerode's util.js what it needs for build contexts
 * given as a directory (tar-fs with tar-stream and bl, @balena/dockerignore),
 * and docker-modem the `debug` package (with supports-color and tty). The
 * agent talks to Podman over a unix socket, builds from a tar stream of its
 * own (tar.ts) and logs through its own logger, yet these cost about 11 MiB of
 * RSS: loading dockerode adds 18 MiB to a bare node, 6.6 MiB without them
 * (Node 20 with the installer's flags, on this machine; docs/bench/README.md).
 *
 * So before dockerode is loaded, each of those modules gets a stand-in in
 * Node's module cache:
 * - `call`: a function that loads the real module on its first call and hands
 *   the call on (a module exporting one function);
 * - `props`: an object that loads the real module on the first property read
 *   and hands it on (a module exporting an object of functions);
 * - `quiet-debug`: `debug`'s factory, whose loggers are off, as they are
 *   anyway unless the DEBUG variable names them; with DEBUG set, the real one
 *   loads.
 * The agent never makes those calls; if a later use does, it behaves as
 * before. A dockerode whose files moved loads as usual, only heavier. The test
 * checks that none of the stacks is loaded and that the stand-ins still reach
 * the real code.
 */
import Module from 'module';
import * as path from 'path';
import type DockerodeType from 'dockerode';

export interface Deferred {
  /** The package the module is resolved from. */
  from: 'dockerode' | 'docker-modem';
  /** A file next to that package's main file (`./session.js`), or a package it depends on. */
  id: string;
  standIn: 'call' | 'props' | 'quiet-debug';
}

export const DEFERRED: readonly Deferred[] = [
  { from: 'dockerode', id: './session.js', standIn: 'call' },
  { from: 'docker-modem', id: './ssh.js', standIn: 'call' },
  { from: 'dockerode', id: 'tar-fs', standIn: 'props' },
  { from: 'dockerode', id: '@balena/dockerignore', standIn: 'call' },
  { from: 'docker-modem', id: 'debug', standIn: 'quiet-debug' },
];

/** A stand-in for the module in `file`, whose real exports `real()` loads (once the stand-in left the cache). */
function standInExports(kind: Deferred['standIn'], real: () => unknown): unknown {
  switch (kind) {
    case 'call':
      return function deferred(this: unknown, ...args: unknown[]): unknown {
        return (real() as (...a: unknown[]) => unknown).apply(this, args);
      };
    case 'props':
      return new Proxy({}, { get: (_target, key) => (real() as Record<string | symbol, unknown>)[key] });
    case 'quiet-debug':
      return (namespace: string) => Object.assign((..._args: unknown[]) => undefined, { enabled: false, namespace });
  }
}

/** Puts a stand-in for `file` in the module cache, unless it is loaded already. */
function defer(file: string, kind: Deferred['standIn']): void {
  if (require.cache[file]) return;
  const stand = new Module(file, module);
  stand.filename = file;
  stand.loaded = true;
  stand.exports = standInExports(kind, () => {
    if (require.cache[file] === stand) delete require.cache[file];
    return require(file);
  });
  require.cache[file] = stand;
}

function deferHeavyParts(): void {
  const dockerode = require.resolve('dockerode');
  const dirs = { dockerode: path.dirname(dockerode), 'docker-modem': '' };
  try {
    dirs['docker-modem'] = path.dirname(require.resolve('docker-modem', { paths: [dirs.dockerode] }));
  } catch {
    // Not resolvable from dockerode: dockerode loads its own, and nothing of it is deferred.
  }
  for (const d of DEFERRED) {
    if (d.standIn === 'quiet-debug' && process.env.DEBUG) continue; // someone asked for those logs
    if (!dirs[d.from]) continue;
    try {
      defer(require.resolve(d.id, { paths: [dirs[d.from]] }), d.standIn);
    } catch {
      // Not where this version keeps it: dockerode loads it itself.
    }
  }
}

deferHeavyParts();

/** The dockerode class, loaded after the stand-ins are in place (types: `import type Dockerode from 'dockerode'`). */
export const DockerodeClient = require('dockerode') as typeof DockerodeType;
