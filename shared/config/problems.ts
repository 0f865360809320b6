/**
 * Turns ajv's schema errors into one operator-facing line each: the field
 * path, what is wrong, what to do. Values are echoed only where they help and
 * never for the key fields (those say only their length).
 */
import type { ErrorObject } from 'ajv';
import { DEFAULT_IMAGES } from './images';
import { parsePublicKey } from '../public-key';

/** `/nodes/0/ip/1` -> `nodes[0].ip[1]`. */
export function fieldPath(instancePath: string): string {
  if (!instancePath) return '';
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^[0-9]+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

export function joinPath(parent: string, child: string | number): string {
  if (typeof child === 'number') return `${parent}[${child}]`;
  return parent ? `${parent}.${child}` : child;
}

/** How a value is described in messages, without echoing it. */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'number') return Number.isInteger(v) ? 'a number' : 'a number with a fraction';
  if (typeof v === 'boolean') return 'true/false';
  if (typeof v === 'string') return 'a string';
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** A short quoted form of a non-secret value for messages. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? v.slice(0, 77) + '...' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return kindOf(v);
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

function describeTypes(types: string | string[]): string {
  const list = Array.isArray(types) ? types : [types];
  if (list.includes('array') && list.includes('string')) return 'a list of strings or one comma-separated string';
  if (list.includes('string') && list.includes('null')) return 'a string or null';
  return list.map((t) => TYPE_WORDS[t] ?? t).join(' or ');
}

export const ADMIN_PUB_HINT =
  'copy it from the last line of "hepto-agent admin init" or from "hepto-agent admin pub" on the machine holding the admin key (the form is "ed25519:" and 44 base64 characters), or use null';

export const KEY_HINT = 'generate one with "hepto-agent keygen"';

/** Why a key is unacceptable (length and character class only); null if fine. */
export function keyProblem(v: string): string | null {
  if (v.length !== 32) return `must be exactly 32 characters, got ${v.length}; ${KEY_HINT}`;
  if (!/^[!-~]*$/.test(v)) {
    return `must be 32 printable ASCII characters with no spaces, and it contains a space, control or non-ASCII character; ${KEY_HINT}`;
  }
  return null;
}

/** Why a node name is not a lowercase RFC 1123 DNS label; null if it is one. */
export function labelProblem(v: string): string | null {
  if (v.length === 0) return 'it is empty';
  if (v.length > 63) return `it has ${v.length} characters, at most 63 are allowed`;
  if (/[A-Z]/.test(v) && /^[a-z0-9-]+$/.test(v.toLowerCase())) return `it must be lowercase (${JSON.stringify(v.toLowerCase())})`;
  if (!/^[a-z0-9-]+$/.test(v)) return 'only a-z, 0-9 and "-" are allowed';
  if (v.startsWith('-') || v.endsWith('-')) return 'it must not start or end with "-"';
  return null;
}

export const LABEL_HINT = 'use a lowercase name of letters, digits and "-", at most 63 characters, e.g. "mercury"';

/** `FIELD: required; hint`, as the schema's missing fields read. */
export function requiredProblem(name: string): string {
  return `${name}: required; ${REQUIRED_HINT[name] ?? 'add it'}`;
}

const REQUIRED_HINT: Record<string, string> = {
  master: 'name the master node, e.g. "mercury" (or join with an invitation: the field "invite")',
  overlay_key: `the same 32-character key on every node; for a new cluster, ${KEY_HINT}; or join with an invitation (the field "invite")`,
  cluster_key: `the k3s server token, independent of overlay_key, on the master's machine only; for a new cluster, ${KEY_HINT}`,
  node: 'name this node, e.g. "venus"',
  soft: 'give both soft and hard limits, e.g. {"soft": 1048576, "hard": 1048576}',
  hard: 'give both soft and hard limits, e.g. {"soft": 1048576, "hard": 1048576}',
};

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return row[b.length];
}

/** The known name closest to `name` (typo, case, camelCase, dashes), or null if none is close. */
export function closest(name: string, known: string[]): string | null {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = norm(name) === norm(k) ? 0 : levenshtein(name.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

function unknownName(path: string, name: string, known: string[], what: string): string {
  const guess = closest(name, known);
  const tail = guess ? `did you mean "${guess}"?` : `known: ${known.join(', ')}`;
  return `${joinPath(path, name)}: unknown ${what}; ${tail}`;
}

type AnyError = ErrorObject & { parentSchema?: Record<string, unknown>; data?: unknown };

function formatProblem(path: string, schemaPath: string, data: unknown): string {
  const field = path.split('.').pop() ?? path;
  if (schemaPath.startsWith('#/definitions/key/') || schemaPath.startsWith('#/definitions/optionalKey/')) {
    return `${path}: ${typeof data === 'string' ? keyProblem(data) : `must be a 32-character string; ${KEY_HINT}`}`;
  }
  if (schemaPath.startsWith('#/definitions/dnsLabel/') && typeof data === 'string') {
    return `${path}: ${show(data)} is not a DNS label: ${labelProblem(data) ?? 'invalid'}; ${LABEL_HINT}`;
  }
  if (schemaPath.startsWith('#/definitions/absolutePath/')) {
    return `${path}: must be an absolute path starting with "/", got ${show(data)}`;
  }
  if (/^#\/properties\/images\//.test(schemaPath)) {
    const example = field === 'wesher' ? DEFAULT_IMAGES.wesher : DEFAULT_IMAGES.k3s;
    return `${path}: must be an image reference without spaces, e.g. "${example}" (the default)`;
  }
  if (path === 'wesher_sha256') {
    const length = typeof data === 'string' ? `, got ${data.length} characters` : '';
    return `${path}: must be 64 hex digits${length}; copy the wesher-<arch> line of wesher.sha256sums, or use null to trust that file`;
  }
  if (path === 'admin_pub') {
    // Never echoed: a private key pasted here by mistake must not be printed.
    const parsed = typeof data === 'string' ? parsePublicKey(data) : null;
    const why = parsed && !parsed.ok ? parsed.why : 'is not an ed25519 public key';
    return `${path}: ${why}; ${ADMIN_PUB_HINT}`;
  }
  if (field === 'iface' || /\.iface$/.test(path)) {
    return `${path}: must be an interface name of 1 to 15 characters, e.g. "ens1", or null`;
  }
  return `${path}: invalid value ${show(data)}`;
}

/** One line per ajv error (deduplicated), naming the field and the fix. */
export function schemaProblems(errors: ErrorObject[]): string[] {
  const out: string[] = [];
  for (const raw of errors as AnyError[]) {
    const path = fieldPath(raw.instancePath);
    const ps = raw.parentSchema ?? {};
    const p = raw.params as Record<string, unknown>;
    let line: string | null = null;
    if (raw.propertyName !== undefined) {
      if (raw.keyword === 'enum') line = unknownName(path, raw.propertyName, p.allowedValues as string[], 'ulimit name');
    } else {
      switch (raw.keyword) {
        case 'additionalProperties': {
          const known = Object.keys((ps.properties as Record<string, unknown>) ?? {});
          line = unknownName(path, String(p.additionalProperty), known, 'field, remove it or fix its name');
          break;
        }
        case 'required': {
          const name = String(p.missingProperty);
          line = `${joinPath(path, name)}: required; ${REQUIRED_HINT[name] ?? 'add it'}`;
          break;
        }
        case 'type':
          line = `${path}: must be ${describeTypes(p.type as string | string[])}, got ${kindOf(raw.data)}`;
          break;
        case 'enum':
          line = `${path}: must be one of ${(p.allowedValues as unknown[]).join(', ')}; got ${show(raw.data)}`;
          break;
        case 'minimum':
        case 'maximum': {
          const lo = ps.minimum as number | undefined;
          const hi = ps.maximum as number | undefined;
          const range = lo !== undefined && hi !== undefined ? `from ${lo} to ${hi}` : lo !== undefined ? `at least ${lo}` : `at most ${hi}`;
          const why = path === 'mtu' ? ' (IPv6 needs 1280; jumbo frames stop at 9000); measure the path MTU between nodes' : '';
          line = `${path}: must be ${range}, got ${show(raw.data)}${why}`;
          break;
        }
        case 'propertyNames':
          break; // reported by the nested enum error, which names the property
        default:
          line = formatProblem(path, raw.schemaPath, raw.data);
      }
    }
    if (line !== null && !out.includes(line)) out.push(line);
  }
  return out;
}
