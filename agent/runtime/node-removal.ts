/**
 * Deleting removed nodes from Kubernetes: which names the agent hosting the
 * master must delete now, and the bookkeeping of what it did. Pure; the
 * supervisor runs the command (`kubectl delete node NAME --ignore-not-found`
 * inside the running k3s server container, docs/upstream.md K19-K24) and
 * records the outcome here.
 *
 * Rules:
 * - only an agent that hosts the master node acts, and only while that
 *   node's k3s container runs (kubectl uses the server's kubeconfig);
 * - never one of this agent's own hosted nodes;
 * - never a name that is not a node name (a name starting with "-" would
 *   reach kubectl as a flag);
 * - once per name per agent run; a failure is retried with backoff;
 * - a name no longer in `removed` (re-admitted) is forgotten, so a later
 *   removal deletes it again.
 */
import type { HeptoConfig } from '../../shared/config/types';
import { labelProblem } from '../../shared/config/problems';
import { retryAt, type BackoffPolicy } from './backoff';
import { hostedNodes, type ClusterView } from './desired';

export interface RemovalAttempt {
  /** Consecutive failed attempts. */
  failures: number;
  /** No attempt before this time. */
  nextAt: number;
  lastError: string;
}

export interface RemovalState {
  /** Deleted during this agent run. */
  deleted: Set<string>;
  /** Names whose last attempt failed. */
  failing: Record<string, RemovalAttempt>;
}

export function emptyRemovalState(): RemovalState {
  return { deleted: new Set(), failing: {} };
}

/** The command run inside the k3s server container. Only the node name varies; it is checked by removalTargets. */
export function deleteNodeArgv(name: string): string[] {
  // /bin/kubectl is a link to the k3s multi-call binary in the rancher/k3s image (K19).
  return ['/bin/kubectl', 'delete', 'node', name, '--ignore-not-found'];
}

/** Whether this agent hosts the master node. */
export function hostsMaster(config: HeptoConfig): boolean {
  return hostedNodes(config).some((n) => n.node === config.master);
}

/**
 * The removed names this agent must see deleted from Kubernetes (sorted,
 * unique), and one problem per name it refuses. Empty unless it hosts the
 * master.
 */
export function removalTargets(config: HeptoConfig, view: ClusterView): { names: string[]; problems: string[] } {
  if (!hostsMaster(config)) return { names: [], problems: [] };
  const own = new Set(hostedNodes(config).map((n) => n.node));
  const names: string[] = [];
  const problems: string[] = [];
  for (const name of [...new Set(view.removed ?? [])].sort()) {
    if (own.has(name)) continue;
    const bad = labelProblem(name);
    if (bad) {
      problems.push(`removed node ${JSON.stringify(name)} is not deleted from Kubernetes: it is not a node name (${bad})`);
      continue;
    }
    names.push(name);
  }
  return { names, problems };
}

export interface RemovalPlan {
  /** Delete these now, in this order. */
  due: string[];
  /** No longer removed (re-admitted): drop what is remembered about them. */
  forget: string[];
  /** Earliest retry still in the future, for the wake-up; null if none. */
  nextAt: number | null;
  /** One sentence per name that cannot be deleted, or whose last attempt failed. */
  problems: string[];
}

export interface RemovalInput {
  config: HeptoConfig;
  view: ClusterView;
  state: RemovalState;
  now: number;
  /** The master's k3s container is running here. */
  masterK3sRunning: boolean;
}

export function planRemovals({ config, view, state, now, masterK3sRunning }: RemovalInput): RemovalPlan {
  const targets = removalTargets(config, view);
  const wanted = new Set(targets.names);
  const forget = [...new Set([...state.deleted, ...Object.keys(state.failing)])].filter((n) => !wanted.has(n)).sort();
  const pending = targets.names.filter((n) => !state.deleted.has(n));
  const due = masterK3sRunning ? pending.filter((n) => (state.failing[n]?.nextAt ?? 0) <= now) : [];
  const later = pending.map((n) => state.failing[n]?.nextAt ?? 0).filter((t) => t > now);
  const problems = [...targets.problems];
  for (const n of pending) {
    const f = state.failing[n];
    if (f) problems.push(`cannot delete removed node ${n} from Kubernetes: ${f.lastError}; retrying`);
  }
  return { due, forget, nextAt: later.length > 0 ? Math.min(...later) : null, problems };
}

export function forgetRemovals(state: RemovalState, names: string[]): void {
  for (const n of names) {
    state.deleted.delete(n);
    delete state.failing[n];
  }
}

export function noteDeleted(state: RemovalState, name: string): void {
  state.deleted.add(name);
  delete state.failing[name];
}

/** Records a failed attempt; the next one waits as a container restart would (at least baseMs). */
export function noteRemovalFailed(state: RemovalState, name: string, error: string, now: number, policy: BackoffPolicy, random: number): RemovalAttempt {
  const failures = (state.failing[name]?.failures ?? 0) + 1;
  const a = { failures, nextAt: retryAt(now, failures, policy, random), lastError: error };
  state.failing[name] = a;
  return a;
}

/** One line of what kubectl said, for a log or a problem. */
export function summarizeOutput(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const text = lines.join('; ');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
