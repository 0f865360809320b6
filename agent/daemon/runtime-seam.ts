/**
 * The seam between the mesh and whatever runs containers. `runtime: none`
 * (a dedicated anchor) uses NoRuntime; `podman` uses the Supervisor from
 * agent/runtime. The daemon only ever talks to this interface.
 */
import type { NodeHealth } from '../../shared/member';
import type { ContainerStatusDoc } from '../../shared/status';
import type { ClusterView } from '../runtime/desired';

export interface RuntimeStatus {
  containers: ContainerStatusDoc[];
  problems: string[];
  /** Container health per hosted node, published in this member's record. */
  health: Record<string, NodeHealth>;
  /**
   * Where this machine hosts the master: the sha256 (64 lowercase hex) of its
   * k3s server CA once k3s has made it, published in this member's record as
   * k3s_ca for the other machines to pin (issue 13); otherwise null.
   */
  k3sCa: string | null;
}

export interface ClusterKeys {
  /** The overlay key from now on (gossip and wesher). */
  overlay_key: string;
  /** The k3s agent token from now on (null when the cluster has none). */
  agent_key: string | null;
  /** The agent token the master's k3s datastore held before this rotation (null: none / unknown). */
  previous_agent_key: string | null;
}

/** What the runtime tells the daemon for metrics and internal error logs (issue 15); every callback optional. */
export interface RuntimeHooks {
  /** An error the supervisor caught that is nobody's fault but the agent's (a bug); `kind` is a fixed word. */
  internalError?(kind: string, error: unknown): void;
  /** One reconcile run finished, how long it took, and whether it failed. */
  reconciled?(seconds: number, ok: boolean): void;
  /** An image pull, or a build of the wesher image, finished. */
  image?(how: 'pull' | 'build', ok: boolean): void;
}

export interface RuntimeDriver {
  start(): Promise<void>;
  /** Stops supervising; leaves the workloads running. */
  stop(): Promise<void>;
  setCluster(view: ClusterView): void;
  status(): RuntimeStatus;
  onChange(cb: () => void): void;
  /** New keys after a rotation (issue 13). Recreate wesher with the new overlay key; move k3s to the new agent token. Never logs a key. */
  setKeys(keys: ClusterKeys): void;
  /** Callbacks for metrics and internal error logs; set once, before start(). */
  setHooks?(hooks: RuntimeHooks): void;
  /** Seconds each container still waits before its next start (backoff), by container name; 0 when it may start. */
  backoffs?(): Record<string, number>;
}

export class NoRuntime implements RuntimeDriver {
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  setCluster(): void {}
  status(): RuntimeStatus {
    return { containers: [], problems: [], health: {}, k3sCa: null };
  }
  onChange(): void {}
  setKeys(): void {}
}
