/**
 * The node flags the installer's wrapper starts the agent with (install.sh,
 * AGENT_NODE_FLAGS; a unit test holds the two equal). The bench starts its
 * agent process with the same ones. Measured in docs/bench/README.md (Memory):
 *
 * --max-semi-space-size=1: V8 grows each young-generation semi-space up to
 *   16 MiB when allocation is brisk, as gossip with 100 peers is, and every
 *   page it grew into stays resident. At 1 MiB a scavenge comes more often and
 *   costs less.
 * --lite-mode: no optimising compiler, and less type feedback kept. The
 *   agent's hot paths are native (X25519, ed25519, HKDF in OpenSSL) or small,
 *   so the CPU it costs is within the bench's noise, and RSS drops by a sixth.
 *   It turns WebAssembly off, which nothing in the agent uses.
 * --no-expose-wasm: says so, or node warns on every start that it turned it off.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--lite-mode', '--no-expose-wasm'];
