/**
 * The node flags the installer's wrapper starts the agent with (install.sh,
 * AGENT_NODE_FLAGS; a unit test holds the two equal). The bench and the test
 * helpers that run agent processes start them with the same ones. Measured in
 * docs/bench/README.md (Memory):
 *
 * --max-semi-space-size=1: V8 grows each young-generation semi-space up to
 *   16 MiB when allocation is brisk, as gossip with 100 peers is, and every
 *   page it grew into stays resident. At 1 MiB a scavenge comes more often and
 *   costs less.
 * --no-opt: no optimising compiler (TurboFan) and none of its code pages.
 *   The agent's hot paths are native (X25519, ed25519, HKDF and the frames'
 *   ChaCha20-Poly1305 in OpenSSL), so its CPU stays within the bench's noise.
 * --no-sparkplug: no baseline compiler either; JavaScript stays in V8's
 *   interpreter (regular expressions are still compiled). 1.8 MiB less with
 *   100 peers on Node 20 (60.0-60.2 → 58.3-58.4 MiB), 1.4 MiB on Node 18; an
 *   agent under issue 14's attack 2 spent the same CPU per message (0.51-0.57 s
 *   for the first, against 0.53 s without it).
 *
 * Not --lite-mode: it saved no more memory than --no-opt, and it implies
 * --jitless, where V8 only interprets; an agent under issue 14's attack 2 then
 * spent more than its 1 s of CPU per message and answered `status` in over
 * 200 ms (docs/upstream.md, N2).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--no-opt', '--no-sparkplug'];
