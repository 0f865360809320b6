/**
 * The wrapper the installer writes at /usr/local/bin/hepto-agent (install.sh,
 * write_wrapper) starts the agent with the node flags of agent/node-flags.ts,
 * the ones the bench measures the agent's memory with, and node honours them.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import { AGENT_NODE_FLAGS } from '../../../agent/node-flags';
import { installSandbox, type InstallSandbox } from './sandbox';

describe('install.sh: the agent wrapper', () => {
  let box: InstallSandbox;
  before(() => {
    box = installSandbox('hepto-wrapper-');
  });
  after(() => box.remove());

  /** write_wrapper with this node, then the wrapper run with three arguments: what the stand-in agent printed, and the installer's stderr. */
  const wrapAndRun = (
    nodeBin: string,
  ): { out: { execArgv: string[]; argv: string[]; youngMiB: number; optimised: boolean; baseline: boolean }; stderr: string } => {
    const lib = path.join(box.dir, 'lib');
    const cli = path.join(lib, '9.9.9', 'dist', 'agent', 'cli.js');
    mkdirSync(path.dirname(cli), { recursive: true });
    // A stand-in agent: allocates briskly, then prints its node flags, its
    // arguments and how large V8 let the young generation grow.
    writeFileSync(
      cli,
      `let keep = [];
for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 1000) keep = []; }
const young = require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
require('v8').setFlagsFromString('--allow-natives-syntax');
const status = new Function('f', 'return %GetOptimizationStatus(f)');
function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; }
const arr = Array.from({ length: 1000 }, (_, i) => i);
// TurboFan compiles on a helper thread: give it a second, however busy the machine.
const until = Date.now() + 1000;
while (Date.now() < until && (status(hot) & 16) === 0) for (let i = 0; i < 1000; i++) hot(arr);
// V8's OptimizationStatus: bit 4 (16) is "optimized", bit 15 "baseline" (Sparkplug's code), in the V8 of Node 18 and 20.
const optimised = (status(hot) & 16) !== 0;
const baseline = (status(hot) & (1 << 15)) !== 0;
console.log(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2), youngMiB: young.space_size / 1048576, optimised, baseline }));
`,
    );
    const wrapper = path.join(box.dir, 'hepto-agent');
    const script = `. "$0"; NODE_BIN=${nodeBin}; HEPTO_LIB=${lib}; AGENT_VERSION=9.9.9; write_wrapper ${wrapper} && chmod 755 ${wrapper} && ${wrapper} status --json 'a b'`;
    const r = spawnSync('/bin/sh', ['-c', script, box.lib], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { out: JSON.parse(r.stdout), stderr: r.stderr };
  };

  it('runs the agent with the node flags of agent/node-flags.ts, which bound the young generation and turn both compilers off', () => {
    const { out, stderr } = wrapAndRun(process.execPath);
    assert.equal(stderr, '');
    assert.deepEqual(out.execArgv, [...AGENT_NODE_FLAGS]);
    assert.deepEqual(out.argv, ['status', '--json', 'a b']);
    // --max-semi-space-size=1: the young generation stays at a few MiB (16 MiB
    // semi-spaces would let it grow to 32 MiB and more under this allocation).
    assert.ok(out.youngMiB <= 4, `young generation ${out.youngMiB} MiB`);
    // --no-opt: a hot function stays unoptimised (TurboFan's code pages are memory too).
    assert.equal(out.optimised, false, 'a hot function was optimised under --no-opt');
    // --no-sparkplug: nor compiled by the baseline compiler (its code pages too).
    assert.equal(out.baseline, false, 'a hot function was compiled by Sparkplug under --no-sparkplug');
  });

  it('runs the agent without them, saying so, on a node that refuses them', () => {
    // A node that knows no --no-opt, as a future V8 might not (V8 11 made it an alias of --no-turbofan): it refuses to start with it.
    const picky = path.join(box.dir, 'picky-node');
    writeFileSync(
      picky,
      `#!/bin/sh\nfor a in "$@"; do [ "$a" = --no-opt ] && { echo "$0: bad option: $a" >&2; exit 9; }; done\nexec ${process.execPath} "$@"\n`,
      { mode: 0o755 },
    );
    const { out, stderr } = wrapAndRun(picky);
    assert.deepEqual(out.execArgv, []);
    assert.deepEqual(out.argv, ['status', '--json', 'a b']);
    // Without the flags V8 optimises as usual: the check above can tell.
    assert.equal(out.optimised, true, 'a hot function stayed unoptimised without --no-opt');
    assert.match(stderr, /\[WARN\] .*refuses the node flags --max-semi-space-size=1 --no-opt --no-sparkplug; the agent runs without them/);
  });
});
