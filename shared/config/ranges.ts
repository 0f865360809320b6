/**
 * Checks of the address ranges a cluster uses: overlay_net (wesher), and
 * cluster_cidr and service_cidr (k3s pods and services), against each other
 * and against every hosted node's own networks (`ip`, `nodes[].ip`). Two
 * ranges that overlap make one of them unreachable: the routes of one shadow
 * the other's. Checked on the values in effect, defaults included, because a
 * default can clash with an overlay_net or a LAN the operator chose.
 */
import { cidrProblem, cidrsOverlap, parseCidr, type Cidr } from './address';
import { defaults, kubeCidrDefaults } from './defaults';
import { joinPath, show } from './problems';

type Obj = Record<string, unknown>;

type RangeField = 'overlay_net' | 'cluster_cidr' | 'service_cidr';

interface Range {
  field: RangeField;
  text: string;
  cidr: Cidr;
  /** Not in the config: messages say so, since the operator never wrote it. */
  defaulted: boolean;
}

/** k3s gives each node a /24 (IPv4) or a /64 (IPv6) of cluster_cidr. */
const NODE_MASK = { 4: 24, 6: 64 } as const;
/** kube-apiserver refuses a service range of more than 2^20 addresses. */
const WIDEST_SERVICE = { 4: 12, 6: 108 } as const;
/** k3s puts the cluster DNS service at the 10th address of service_cidr. */
const NARROWEST_SERVICE = { 4: 28, 6: 124 } as const;

function describe(r: Range): string {
  return r.defaulted ? `not set, and its default ${show(r.text)}` : show(r.text);
}

/** What to do, leading to "... outside X". */
function fix(r: Range): string {
  return `${r.defaulted ? 'set' : 'change'} ${r.field} to a range`;
}

const fam = (c: Cidr): string => `IPv${c.family}`;

/** The overlay in effect, or null when it is unusable (reported by checkOverlayNet). */
function overlayRange(input: Obj): Range | null {
  const defaulted = input.overlay_net === undefined;
  const text = defaulted ? defaults.overlay_net : input.overlay_net;
  if (typeof text !== 'string') return null;
  const cidr = parseCidr(text);
  return cidr ? { field: 'overlay_net', text, cidr, defaulted } : null;
}

/** cluster_cidr or service_cidr in effect; reports a value that is no CIDR or of the wrong family. */
function kubeRange(field: 'cluster_cidr' | 'service_cidr', input: Obj, overlay: Range | null, problems: string[]): Range | null {
  const fallback = kubeCidrDefaults(overlay?.text ?? defaults.overlay_net)[field];
  const defaulted = input[field] === undefined;
  const text = defaulted ? fallback : input[field];
  if (typeof text !== 'string') return null; // the schema reports the type
  const cidr = parseCidr(text);
  if (!cidr) {
    problems.push(`${field}: ${show(text)} is not a CIDR: ${cidrProblem(text)}; the default here is ${show(fallback)}`);
    return null;
  }
  if (overlay && cidr.family !== overlay.cidr.family) {
    problems.push(
      `${field}: ${show(text)} is ${fam(cidr)} but overlay_net ${show(overlay.text)} is ${fam(overlay.cidr)}; ` +
        `k3s node IPs are overlay addresses, so ${field} must be ${fam(overlay.cidr)} too, e.g. ${show(fallback)}`,
    );
    return null;
  }
  return { field, text, cidr, defaulted };
}

function checkSizes(cluster: Range | null, service: Range | null, problems: string[]): void {
  if (cluster && cluster.cidr.prefix >= NODE_MASK[cluster.cidr.family]) {
    const mask = NODE_MASK[cluster.cidr.family];
    problems.push(
      `cluster_cidr: ${describe(cluster)} is not wider than the /${mask} k3s gives each node; use a range of prefix /${mask - 8} (room for 256 nodes)`,
    );
  }
  if (service) {
    const f = service.cidr.family;
    if (service.cidr.prefix < WIDEST_SERVICE[f]) {
      problems.push(
        `service_cidr: ${describe(service)} is too wide: kube-apiserver accepts at most 2^20 service addresses; use /${WIDEST_SERVICE[f]} or longer`,
      );
    } else if (service.cidr.prefix > NARROWEST_SERVICE[f]) {
      problems.push(`service_cidr: ${describe(service)} is too narrow: k3s puts the cluster DNS at its 10th address; use /${NARROWEST_SERVICE[f]} or shorter`);
    }
  }
}

/** Own `ip` entries of every hosted node that parse, with their field path. */
function nodeNetworks(input: Obj): Array<{ path: string; text: string; cidr: Cidr }> {
  const out: Array<{ path: string; text: string; cidr: Cidr }> = [];
  const collect = (path: string, ip: unknown): void => {
    if (!Array.isArray(ip)) return;
    ip.forEach((text, i) => {
      const cidr = typeof text === 'string' ? parseCidr(text) : null;
      if (cidr) out.push({ path: joinPath(joinPath(path, 'ip'), i), text: text as string, cidr });
    });
  };
  collect('', input.ip);
  if (Array.isArray(input.nodes)) {
    input.nodes.forEach((n, i) => {
      if (typeof n === 'object' && n !== null) collect(`nodes[${i}]`, (n as Obj).ip);
    });
  }
  return out;
}

const WHAT: Record<RangeField, string> = { overlay_net: 'the overlay', cluster_cidr: 'the pod range', service_cidr: 'the service range' };

/**
 * Every problem with the three ranges, one line each, led by the field to
 * change and naming the field it clashes with. `input` is the normalised
 * config (ip lists already split).
 */
export function rangeProblems(input: Obj): string[] {
  const problems: string[] = [];
  const overlay = overlayRange(input);
  const cluster = kubeRange('cluster_cidr', input, overlay, problems);
  const service = kubeRange('service_cidr', input, overlay, problems);
  checkSizes(cluster, service, problems);
  const ranges = [overlay, cluster, service].filter((r): r is Range => r !== null);
  // Each later range against the earlier ones: the later one is the one to move.
  ranges.forEach((r, i) => {
    for (const earlier of ranges.slice(0, i)) {
      if (!cidrsOverlap(r.cidr, earlier.cidr)) continue;
      problems.push(`${r.field}: ${describe(r)} overlaps ${earlier.field} ${show(earlier.text)}; ${fix(r)} outside ${WHAT[earlier.field]}`);
    }
  });
  for (const own of nodeNetworks(input)) {
    for (const r of ranges) {
      if (!cidrsOverlap(r.cidr, own.cidr)) continue;
      problems.push(
        `${r.field}: ${describe(r)} overlaps ${own.path} ${show(own.text)} (a hosted node's own network); ${fix(r)} outside the hosted nodes' networks`,
      );
    }
  }
  return problems;
}
