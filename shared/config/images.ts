/**
 * Pinned default images. Owned by the runtime (Podman) work: every flag and
 * variable the agent passes (agent/runtime/specs.ts) exists in the documented
 * CLI of these versions.
 *
 * - wesher v0.2.6, the latest costela/wesher release. Upstream publishes
 *   release binaries (wesher-amd64, ...), not an image: this reference names
 *   an image holding that release binary as its entrypoint, which the
 *   operator builds or mirrors (set `images.wesher` to their own reference).
 *   The agent sets only documented WESHER_* variables (cluster key, join,
 *   overlay net, interface, bind address, no /etc/hosts, log level, MTU).
 *   WESHER_MTU is documented in wesher's option table; a wesher build without
 *   it ignores the variable (its options come from declared fields only) and
 *   keeps its own interface MTU, which `hepto-agent doctor` can point out.
 * - k3s v1.33.5+k3s1 (Docker Hub tags use "-" for "+"), a current stable
 *   line. Flags used: `server`, `agent --server`, `--node-name`, `--node-ip`,
 *   `--flannel-iface`, and the K3S_TOKEN variable (docs.k3s.io/cli/agent).
 */
export const DEFAULT_IMAGES = {
  wesher: 'ghcr.io/costela/wesher:v0.2.6',
  k3s: 'docker.io/rancher/k3s:v1.33.5-k3s1',
} as const;
