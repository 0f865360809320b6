/**
 * validateConfig: the one place a config is judged. The JSON schema checks
 * shape, types and ranges; the checks below cover what a schema cannot say
 * (CIDRs and their overlaps, in ranges.ts; anchors, URLs, duplicate names,
 * independent keys). Every problem is collected, one line each, naming the
 * field; key values are never echoed.
 */
import { hostname as osHostname } from 'os';
import type { ValidateFunction } from 'ajv';
import type { HeptoConfig, NodeConfig } from './types';
import { defaults, defaultNodeName, kubeCidrDefaults, nodeDefaults } from './defaults';
import { cidrProblem, ipFamily, isIp, parseCidr, parseHostPort } from './address';
import { ADMIN_PUB_HINT, joinPath, KEY_HINT, labelProblem, requiredProblem, schemaProblems, show } from './problems';
import { parsePublicKey } from '../public-key';
import { rangeProblems } from './ranges';
import { errorMessage, isHeptoError } from '../errors';

export interface ValidateOptions {
  /** Machine host name for the `node` default (tests inject it). */
  hostname?: string;
}

export interface ValidationResult {
  config: HeptoConfig | null;
  problems: string[];
}

/**
 * The JSON schema's validator, generated from shared/schema/config.schema.json
 * at build time (scripts/config-validator.js, ajv's standalone code): the
 * agent never loads ajv's compiler, 3.4 MiB of its resident memory.
 */
let compiled: ValidateFunction | null = null;
function schemaValidator(): ValidateFunction {
  if (!compiled) {
    try {
      compiled = require('./config-validator') as ValidateFunction;
    } catch (e) {
      throw new Error(
        `the config validator is missing next to ${__filename} (${errorMessage(e)}): it is generated at build time; run npm run build (or node scripts/config-validator.js)`,
      );
    }
  }
  return compiled;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The seed writes `ip=a/64,b/24`; the config takes a list. Splits a comma-separated string. */
export function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function normaliseNode(n: Obj): Obj {
  const out: Obj = { ...n };
  for (const f of ['ip', 'gw']) if (typeof out[f] === 'string') out[f] = splitList(out[f] as string);
  return out;
}

/** A copy with `ip`/`gw` strings split into lists (top level and nodes[]). */
function normalise(raw: Obj): Obj {
  const out = normaliseNode(raw);
  if (Array.isArray(out.nodes)) out.nodes = out.nodes.map((n) => (isObj(n) ? normaliseNode(n) : n));
  return out;
}

/**
 * Checks the addresses a node gives itself (`own`) and what its mode needs
 * once inherited values are in (`eff`), so inherited values are reported once.
 */
function checkAddresses(path: string, own: Obj, eff: Obj, problems: string[]): void {
  (Array.isArray(own.ip) ? (own.ip as unknown[]) : []).forEach((s, i) => {
    if (typeof s !== 'string') return;
    const why = cidrProblem(s);
    if (why) problems.push(`${joinPath(joinPath(path, 'ip'), i)}: ${show(s)} is not an address with prefix: ${why}`);
  });
  (Array.isArray(own.gw) ? (own.gw as unknown[]) : []).forEach((s, i) => {
    if (typeof s !== 'string' || isIp(s)) return;
    const slash = s.includes('/') && parseCidr(s) ? ' (a gateway has no prefix length; drop the "/..." part)' : '';
    problems.push(
      `${joinPath(joinPath(path, 'gw'), i)}: ${show(s)} is not an IP address${slash}; write the gateway address, e.g. "2001:db8::ffff" or "192.0.2.254"`,
    );
  });
  const mode = eff.network_mode;
  if (mode === 'ipvlan' || mode === 'macvlan') {
    if (typeof eff.iface !== 'string' || eff.iface === '') {
      problems.push(`${joinPath(path, 'iface')}: required when network_mode is ${mode}; name the host interface, e.g. "ens1"`);
    }
    if (Array.isArray(eff.ip) && eff.ip.length === 0) {
      problems.push(
        `${joinPath(path, 'ip')}: required when network_mode is ${mode}; give the node's addresses with prefix, e.g. ["2001:db8::10/64", "192.0.2.10/24"]`,
      );
    }
  }
  if (Array.isArray(own.gw) && Array.isArray(eff.ip)) {
    const families = new Set(strings(eff.ip).map((s) => parseCidr(s)?.family));
    (own.gw as unknown[]).forEach((g, i) => {
      const fam = typeof g === 'string' ? ipFamily(g) : 0;
      if (fam !== 0 && families.size > 0 && !families.has(fam)) {
        problems.push(
          `${joinPath(joinPath(path, 'gw'), i)}: IPv${fam} gateway ${show(g)} but ${joinPath(path, 'ip')} has no IPv${fam} address; add one or remove the gateway`,
        );
      }
    });
  }
}

function checkOverlayNet(v: unknown, problems: string[]): void {
  if (typeof v !== 'string') return;
  const c = parseCidr(v);
  if (!c) {
    problems.push(`overlay_net: ${show(v)} is not a CIDR: ${cidrProblem(v)}; wesher's default is "10.0.0.0/8"`);
    return;
  }
  const bits = c.family === 4 ? 32 : 128;
  if (c.prefix % 8 !== 0) {
    problems.push(`overlay_net: prefix /${c.prefix} must be a multiple of 8 (wesher hands out whole bytes); use /8, /16 or /24 (IPv6: /64, /96 ...)`);
  } else if (c.prefix === 0 || c.prefix >= bits) {
    problems.push(`overlay_net: prefix /${c.prefix} leaves no room for node addresses; use /8, /16 or /24 (IPv6: /64, /96 ...)`);
  }
}

/**
 * The agent appends `/wesher-<arch>` and `/wesher.sha256sums` to the base URL
 * and logs the URLs it fetches; the value is echoed only once it holds no
 * credentials, query or fragment (where tokens live).
 */
function checkDownload(v: unknown, pinned: unknown, problems: string[]): void {
  if (typeof v !== 'string') return;
  const example = `e.g. ${show(defaults.wesher_download)} (the default)`;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    problems.push(`wesher_download: not a URL; give the http(s) base URL of the wesher release files, ${example}`);
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`wesher_download: must start with https:// or http://, got ${show(url.protocol.replace(/:$/, ''))}; ${example}`);
  } else if (url.username !== '' || url.password !== '') {
    problems.push('wesher_download: must not hold a user name or password (the agent logs the URLs it fetches); serve the files without them');
  } else if (url.search !== '' || url.hash !== '') {
    problems.push(
      `wesher_download: has a query or fragment (not shown: it may hold a token), but the agent appends /wesher-<arch> and /wesher.sha256sums to it; give the directory URL only`,
    );
  } else if (url.protocol === 'http:' && (pinned === null || pinned === undefined)) {
    problems.push(
      `wesher_download: ${show(v)} is plain http, so the sums file fetched from it proves nothing; use https://, or pin the binary with wesher_sha256`,
    );
  }
}

function checkEndpoints(field: 'anchors' | 'advertise', v: unknown, port: number, problems: string[]): void {
  if (!Array.isArray(v)) return;
  v.forEach((s, i) => {
    if (typeof s !== 'string') return;
    try {
      parseHostPort(s, port);
    } catch (e) {
      const hint = isHeptoError(e) && e.hint ? `; ${e.hint}` : '';
      problems.push(`${field}[${i}]: ${errorMessage(e)}${hint}`);
    }
  });
}

function checkNames(input: Obj, node: string, nodeFromDefault: boolean, hostname: string, problems: string[]): void {
  if (nodeFromDefault) {
    const why = labelProblem(node);
    if (why)
      problems.push(`node: not set, and the host name ${show(hostname)} gives ${show(node)}, which is not a DNS label (${why}); set "node" in the config`);
  }
  const seen = new Map<string, string>([[node, 'the top-level node']]);
  if (!Array.isArray(input.nodes)) return;
  input.nodes.forEach((n, i) => {
    if (!isObj(n) || typeof n.node !== 'string') return;
    const where = `nodes[${i}].node`;
    const first = seen.get(n.node);
    if (first) problems.push(`${where}: ${show(n.node)} is already used by ${first}; every hosted node needs its own name`);
    else seen.set(n.node, where);
  });
}

/** metrics_listen: "" (off), an IP address, or IP:port ([v6]:port); never a host name (it is a bind address). */
function checkMetricsListen(v: unknown, problems: string[]): void {
  if (typeof v !== 'string' || v === '') return;
  const fix = 'write host:port with an IP address of this machine, e.g. "127.0.0.1:9947" (the default) or "[::1]:9947", or "" to turn metrics off';
  let host: string;
  try {
    ({ host } = parseHostPort(v, defaults.gossip_port));
  } catch {
    problems.push(`metrics_listen: ${show(v)} is not an address with a port; ${fix}`);
    return;
  }
  if (!isIp(host)) problems.push(`metrics_listen: ${show(host)} is not an IP address (a listening address cannot be a host name); ${fix}`);
}

function checkUlimits(v: unknown, problems: string[]): void {
  if (!isObj(v)) return;
  for (const [name, lim] of Object.entries(v)) {
    if (!isObj(lim) || !Number.isInteger(lim.soft) || !Number.isInteger(lim.hard)) continue;
    const big = (x: number): number => (x === -1 ? Infinity : x);
    if (big(lim.soft as number) > big(lim.hard as number)) {
      problems.push(`ulimits.${name}: soft (${lim.soft}) is above hard (${lim.hard}); soft must not exceed hard (-1 means unlimited)`);
    }
  }
}

/** What the schema's pattern lets through: base64 that is not in its canonical form. Same line as the schema's, so reported once. */
function checkAdminPub(v: unknown, problems: string[]): void {
  if (typeof v !== 'string') return;
  const parsed = parsePublicKey(v);
  if (!parsed.ok) problems.push(`admin_pub: ${parsed.why}; ${ADMIN_PUB_HINT}`);
}

/**
 * The k3s keys (issue 13): the machine hosting the master needs cluster_key,
 * the k3s server token; any other machine that runs k3s needs agent_key, or
 * cluster_key as before (status then says how to remove it). A gossip-only
 * anchor (runtime none) runs no k3s and needs neither. Every key differs from
 * the others.
 */
function checkK3sKeys(input: Obj, node: string, problems: string[]): void {
  const given = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  const { overlay_key: ok, cluster_key: ck, agent_key: ak } = input;
  if (given(ok) && ok === ck) {
    problems.push('cluster_key: is the same as overlay_key; the two keys must be generated independently (run "hepto-agent keygen" once for each)');
  }
  if (given(ak) && ak === ok) {
    problems.push('agent_key: is the same as overlay_key; the keys must be generated independently (run "hepto-agent keygen" once for each)');
  }
  if (given(ak) && ak === ck) {
    problems.push(
      'agent_key: is the same as cluster_key, so it would hand the k3s server token to every machine; generate it on its own with "hepto-agent keygen"',
    );
  }
  const master = typeof input.master === 'string' ? input.master : null;
  const hosted = [node, ...(Array.isArray(input.nodes) ? input.nodes.map((n) => (isObj(n) ? n.node : undefined)) : [])];
  const hostsMaster = master !== null && hosted.includes(master);
  if (hostsMaster) {
    if (!given(ck)) {
      problems.push(
        `cluster_key: required on the machine that hosts the master node ${show(master)}: it is the k3s server token; for a new cluster, ${KEY_HINT}`,
      );
    }
  } else if (input.runtime !== 'none' && !given(ck) && !given(ak)) {
    problems.push(
      `agent_key: required on a machine that does not host the master: copy the master's agent_key (the k3s agent token); cluster_key (the k3s server token) also works, but makes this machine's owner Kubernetes admin`,
    );
  }
}

/** The config waits to enrol with its invitation: it has one, and no overlay_key yet. */
export function pendingEnrolment(input: { invite?: unknown; overlay_key?: unknown }): boolean {
  return typeof input.invite === 'string' && (input.overlay_key === undefined || input.overlay_key === null || input.overlay_key === '');
}

function semanticProblems(input: Obj, node: string, nodeFromDefault: boolean, hostname: string): string[] {
  const problems: string[] = [];
  const pending = pendingEnrolment(input);
  if (!pending) for (const f of ['master', 'overlay_key']) if (input[f] === undefined) problems.push(requiredProblem(f));
  if (pending) {
    // Enrolment brings these: given here, they would be overwritten, or disagree.
    for (const f of ['master', 'cluster_key', 'agent_key', 'admin_pub']) {
      if (input[f] !== undefined && input[f] !== null)
        problems.push(`${f}: comes from the enrolment with "invite"; remove it, or remove "invite" and give overlay_key`);
    }
  }
  checkNames(input, node, nodeFromDefault, hostname, problems);
  if (!pending) checkK3sKeys(input, node, problems);
  checkOverlayNet(input.overlay_net, problems);
  problems.push(...rangeProblems(input));
  checkDownload(input.wesher_download, input.wesher_sha256, problems);
  const top: Obj = { network_mode: defaults.network_mode, ip: [], gw: [], iface: null, ...input };
  checkAddresses('', input, top, problems);
  if (Array.isArray(input.nodes)) {
    input.nodes.forEach((n, i) => {
      if (!isObj(n)) return;
      const inherited: Obj = { network_mode: top.network_mode, iface: top.iface, ip: [], gw: top.gw, ...n };
      checkAddresses(`nodes[${i}]`, n, inherited, problems);
    });
  }
  const port = Number.isInteger(input.gossip_port) ? (input.gossip_port as number) : defaults.gossip_port;
  checkEndpoints('anchors', input.anchors, port, problems);
  checkEndpoints('advertise', input.advertise, port, problems);
  if (Array.isArray(input.gossip_listen)) {
    input.gossip_listen.forEach((s, i) => {
      if (typeof s === 'string' && !isIp(s)) {
        problems.push(`gossip_listen[${i}]: ${show(s)} is not an IP address; use "::" for every address, or one of this machine's addresses`);
      }
    });
  }
  checkUlimits(input.ulimits, problems);
  checkAdminPub(input.admin_pub, problems);
  checkMetricsListen(input.metrics_listen, problems);
  return problems;
}

function build(input: Obj, node: string): HeptoConfig {
  const d = JSON.parse(JSON.stringify(defaults)) as typeof defaults;
  // The pod and service ranges default by overlay_net's family, so they follow the configured one.
  const kube = kubeCidrDefaults((input.overlay_net as string | undefined) ?? d.overlay_net);
  // cluster_key is left out on machines that do not host the master.
  // A config waiting to enrol has no master or overlay_key yet: empty until the enrolment writes them (pendingEnrolment).
  const top = {
    ...d,
    ...kube,
    cluster_key: null,
    master: '',
    overlay_key: '',
    ...input,
    node,
    images: { ...d.images, ...(input.images as Obj | undefined) },
  } as HeptoConfig;
  // One spelling of each, so the agent can append paths and compare digests as they are.
  top.wesher_download = top.wesher_download.replace(/\/+$/, '');
  if (top.wesher_sha256 !== null) top.wesher_sha256 = top.wesher_sha256.toLowerCase();
  top.nodes = ((input.nodes as Obj[] | undefined) ?? []).map((n) => ({ ...nodeDefaults(top), ...n }) as NodeConfig);
  return top;
}

/** Replaces any key value that slipped into a message (for example a key pasted into the wrong field). */
function scrubKeys(lines: string[], raw: Obj): string[] {
  const keys = [raw.overlay_key, raw.cluster_key, raw.agent_key, raw.invite].filter((k): k is string => typeof k === 'string' && k.length >= 6);
  return lines.map((l) => keys.reduce((acc, k) => acc.split(k).join('[key]'), l));
}

/**
 * Validates and defaults a parsed config. Returns every problem (one line
 * each, naming the field) and the config only when there are none.
 */
export function validateConfig(raw: unknown, opts: ValidateOptions = {}): ValidationResult {
  if (!isObj(raw)) {
    return {
      config: null,
      problems: [`config: must be a JSON object of fields, got ${raw === undefined ? 'nothing' : Array.isArray(raw) ? 'a list' : typeof raw}`],
    };
  }
  const input = normalise(raw);
  const validate = schemaValidator();
  const problems = validate(input) ? [] : schemaProblems(validate.errors ?? []);
  const hostname = opts.hostname ?? osHostname();
  const nodeFromDefault = input.node === undefined;
  const node = nodeFromDefault ? defaultNodeName(hostname) : typeof input.node === 'string' ? input.node : '';
  for (const p of semanticProblems(input, node, nodeFromDefault, hostname)) if (!problems.includes(p)) problems.push(p);
  if (problems.length > 0) return { config: null, problems: scrubKeys(problems, raw) };
  return { config: build(input, node), problems: [] };
}
