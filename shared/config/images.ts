/**
 * Pinned default images. Owned by the runtime (Podman) work: every flag the
 * agent passes must exist in the documented CLI of these exact versions.
 */
export const DEFAULT_IMAGES = {
  wesher: 'ghcr.io/costela/wesher:v0.2.6',
  k3s: 'docker.io/rancher/k3s:v1.30.6-k3s1',
} as const;
