/**
 * Seed 002's Ansible inventory: `[cluster]` lines `name key=value ...` (one
 * per node) and `[cluster:vars]` lines `key=value # comment` shared by all.
 * inventoryToConfig turns one node's view into a config object (not yet
 * validated: validateConfig judges it like any other config).
 */
import { HeptoError } from '../errors';
import { splitList } from './validate';

export interface InventoryHost {
  name: string;
  /** 1-based line of the host in the file. */
  line: number;
  vars: Record<string, string>;
}

export interface Inventory {
  hosts: InventoryHost[];
  /** `[cluster:vars]` (and `[all:vars]`), values with comments and quotes removed. */
  vars: Record<string, string>;
  /** Line of each group variable, for messages. */
  varLines: Record<string, number>;
}

const HOST_SECTIONS = new Set(['cluster']);
const VAR_SECTIONS = new Set(['cluster:vars', 'all:vars']);

/** Splits off a trailing ` # comment` / ` ; comment`, honouring quotes and JSON-ish lists. */
function stripComment(s: string): string {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s=,[]/.test(s[i - 1])) quote = c;
    } else if ((c === '#' || c === ';') && (i === 0 || /\s/.test(s[i - 1]))) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

function unquote(v: string): string {
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) return v.slice(1, -1);
  return v;
}

/** Splits a host line into whitespace-separated tokens, keeping quoted values whole. */
function tokens(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const c of s) {
    if (quote) {
      cur += c;
      if (c === quote) quote = null;
    } else if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
    } else {
      if ((c === '"' || c === "'") && (cur === '' || cur.endsWith('='))) quote = c;
      cur += c;
    }
  }
  if (cur) out.push(cur);
  return out;
}

/** Parses the inventory text; every malformed line is reported with its number. */
export function parseInventory(text: string): Inventory {
  const inv: Inventory = { hosts: [], vars: {}, varLines: {} };
  const errors: string[] = [];
  let section: string | null = null;
  text.split(/\r?\n/).forEach((rawLine, idx) => {
    const n = idx + 1;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(stripComment(line));
    if (header) {
      section = header[1].trim();
      if (!HOST_SECTIONS.has(section) && !VAR_SECTIONS.has(section)) {
        errors.push(`line ${n}: unknown section [${section}]; hepto's inventory has [cluster] and [cluster:vars]`);
      }
      return;
    }
    if (section === null) {
      errors.push(`line ${n}: outside any section; put node lines under [cluster] and shared settings under [cluster:vars]`);
      return;
    }
    if (VAR_SECTIONS.has(section)) {
      const body = stripComment(line);
      const eq = body.indexOf('=');
      const key = eq > 0 ? body.slice(0, eq).trim() : '';
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
        errors.push(`line ${n}: expected name=value in [${section}]`);
        return;
      }
      if (key in inv.vars) errors.push(`line ${n}: ${key} is already set on line ${inv.varLines[key]}; keep one`);
      inv.vars[key] = unquote(body.slice(eq + 1).trim());
      inv.varLines[key] = n;
      return;
    }
    if (!HOST_SECTIONS.has(section)) return; // unknown section, already reported
    const [name, ...rest] = tokens(stripComment(line));
    const host: InventoryHost = { name, line: n, vars: {} };
    for (const t of rest) {
      const eq = t.indexOf('=');
      if (eq <= 0) {
        errors.push(`line ${n}: expected name=value after the node name, got a bare word; write e.g. iface=ens1`);
        continue;
      }
      host.vars[t.slice(0, eq)] = unquote(t.slice(eq + 1));
    }
    const dup = inv.hosts.find((h) => h.name === name);
    if (dup) errors.push(`line ${n}: node ${JSON.stringify(name)} is already listed on line ${dup.line}; node names must be unique`);
    else inv.hosts.push(host);
  });
  if (errors.length > 0) {
    throw new HeptoError('INVENTORY_INVALID', `the inventory has ${errors.length} problem${errors.length === 1 ? '' : 's'}`, {
      hint: 'fix each line below: a hepto Ansible inventory has one line per node under [cluster] (name key=value ...) and shared key=value lines under [cluster:vars]',
      details: errors,
    });
  }
  return inv;
}

function badList(where: string, what: string): HeptoError {
  return new HeptoError('INVENTORY_INVALID', `${where}: ${what}`, { hint: 'write e.g. anchors=["2001:db8::1","2001:db8::2"]' });
}

/** `["2001:db8::1","host:7947"]`, `'a','b'` or `a,b` -> list. */
export function parseList(v: string, where: string): string[] {
  const s = v.trim();
  if (!s.startsWith('[')) return splitList(s).map(unquote);
  if (!s.endsWith(']')) throw badList(where, 'list starts with [ but does not end with ]');
  const inner = s.slice(1, -1).trim();
  if (inner === '') return [];
  return inner.split(',').map((item) => {
    const t = item.trim();
    if (!/^(".*"|'.*')$/.test(t)) {
      throw badList(where, 'list items must be quoted');
    }
    return t.slice(1, -1);
  });
}

const LIST_FIELDS = new Set(['anchors', 'ip', 'gw', 'gossip_listen', 'advertise']);
const NUMBER_FIELDS = new Set(['mtu', 'gossip_port']);

/**
 * The config object of one node: group variables, then the node's own
 * (Ansible's precedence), minus ansible_* connection settings. Unknown names
 * are kept so that validation reports them.
 */
export function inventoryToConfig(inv: Inventory, node: string): Record<string, unknown> {
  const host = inv.hosts.find((h) => h.name === node);
  if (!host) {
    const names = inv.hosts.map((h) => h.name);
    throw new HeptoError('INVENTORY_INVALID', `node ${JSON.stringify(node)} is not in the inventory`, {
      hint: names.length ? `pass --node with one of: ${names.join(', ')}` : 'the [cluster] section lists no node',
    });
  }
  const out: Record<string, unknown> = { node: host.name };
  const merged: Array<[string, string, string]> = [
    ...Object.entries(inv.vars).map(([k, v]): [string, string, string] => [k, v, `line ${inv.varLines[k]}`]),
    ...Object.entries(host.vars).map(([k, v]): [string, string, string] => [k, v, `line ${host.line}`]),
  ];
  for (const [k, v, where] of merged) {
    if (k.startsWith('ansible_') || k === 'node') continue;
    if (LIST_FIELDS.has(k)) out[k] = parseList(v, `${where}: ${k}`);
    else if (NUMBER_FIELDS.has(k) && /^-?[0-9]+$/.test(v.trim())) out[k] = Number(v.trim());
    else out[k] = v;
  }
  return out;
}
