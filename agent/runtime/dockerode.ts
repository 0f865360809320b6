/**
 * dockerode, loaded lean (issue 16). At load time dockerode 4 requires its
 * BuildKit session support (`lib/session.js`: @grpc/grpc-js and
 * @grpc/proto-loader, with protobufjs) and docker-modem its SSH transport
 * (`lib/ssh.js`: ssh2). The agent talks to Podman over a unix socket and uses
 * neither, yet they cost about 12 MiB of RSS (loading dockerode: 23 MiB, 11
 * MiB without them; measured with Node 20 on this machine).
 *
 * So before dockerode is loaded, each of those two files gets a stand-in in
 * Node's module cache: a function that loads the real file on its first call
 * and hands the call on. The agent never makes that call; if a later use
 * does, it behaves as before. A dockerode whose files moved loads as usual,
 * only heavier. The test checks that neither stack is loaded and that the
 * stand-ins still reach the real code.
 */
import Module from 'module';
import * as path from 'path';
import type DockerodeType from 'dockerode';

/** The files deferred, as [package whose lib holds it, file]. */
export const DEFERRED: ReadonlyArray<readonly [string, string]> = [
  ['dockerode', 'session.js'],
  ['docker-modem', 'ssh.js'],
];

/** Puts a stand-in for `file` (a module exporting one function) in the module cache, unless it is loaded already. */
function defer(file: string): void {
  if (require.cache[file]) return;
  const stand = new Module(file, module);
  stand.filename = file;
  stand.loaded = true;
  stand.exports = function deferred(this: unknown, ...args: unknown[]): unknown {
    if (require.cache[file] === stand) delete require.cache[file];
    const real = require(file) as (...a: unknown[]) => unknown;
    return real.apply(this, args);
  };
  require.cache[file] = stand;
}

function deferHeavyParts(): void {
  const dockerode = require.resolve('dockerode');
  for (const [pkg, file] of DEFERRED) {
    try {
      const main = pkg === 'dockerode' ? dockerode : require.resolve(pkg, { paths: [path.dirname(dockerode)] });
      defer(path.join(path.dirname(main), file));
    } catch {
      // Not where this version keeps it: dockerode loads it itself.
    }
  }
}

deferHeavyParts();

/** The dockerode class, loaded after the stand-ins are in place (types: `import type Dockerode from 'dockerode'`). */
export const DockerodeClient = require('dockerode') as typeof DockerodeType;
