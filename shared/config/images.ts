/**
 * Pinned default images. Owned by the runtime (Podman) work: every flag and
 * variable the agent passes (agent/runtime/specs.ts) exists in the CLI of
 * these versions.
 *
 * - wesher v0.2.6, the latest costela/wesher release. Upstream publishes
 *   release binaries (wesher-amd64, ...) and a wesher.sha256sums file, but no
 *   image. The default reference is therefore a local one: when it is
 *   missing, the agent builds it itself from the release binary fetched from
 *   `wesher_download` and checked against the sums file (or `wesher_sha256`).
 *   An operator who mirrors an image sets `images.wesher` to it instead, and
 *   the agent then only pulls it. Variables set: WESHER_CLUSTER_KEY,
 *   WESHER_JOIN, WESHER_OVERLAY_NET, WESHER_INTERFACE, WESHER_BIND_ADDR,
 *   WESHER_NO_ETC_HOSTS, WESHER_LOG_LEVEL. wesher v0.2.6 has no MTU option
 *   (it sets 1420 on its interface itself), so the agent sets the interface
 *   MTU from outside.
 * - k3s v1.33.5+k3s1 (Docker Hub tags use "-" for "+"), a current stable
 *   line. Flags used: `server` (with `--cluster-cidr`, `--service-cidr`),
 *   `agent --server`, `--node-name`, `--node-ip`, `--flannel-iface`, and the
 *   K3S_TOKEN variable (docs.k3s.io/cli/server, docs.k3s.io/cli/agent).
 */

/** The wesher release the default image and download URL both name. */
export const WESHER_VERSION = 'v0.2.6';

/**
 * The default wesher reference, built locally by the agent. Other code tests
 * `config.images.wesher === DEFAULT_WESHER_IMAGE` to decide whether it may
 * build the image (it never builds over an operator's own reference).
 */
export const DEFAULT_WESHER_IMAGE = `localhost/hepto/wesher:${WESHER_VERSION}`;

export const DEFAULT_IMAGES = {
  wesher: DEFAULT_WESHER_IMAGE,
  k3s: 'docker.io/rancher/k3s:v1.33.5-k3s1',
} as const;
