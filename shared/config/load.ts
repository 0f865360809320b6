/**
 * loadConfig: read, parse and validate the config file. Errors say which file
 * and what to do, never its content (it holds the keys).
 */
import { promises as fs } from 'fs';
import type { HeptoConfig } from './types';
import { validateConfig } from './validate';
import { locateJsonError } from './json-position';
import { HeptoError, errnoCode } from '../errors';
import { registerSecret } from '../log';

export interface LoadOptions {
  /** Machine host name for the `node` default (tests inject it). */
  hostname?: string;
}

export interface LoadedConfig {
  config: HeptoConfig;
  /** Things an operator should fix but that do not stop the agent. */
  warnings: string[];
}

const CREATE_HINT = 'create it with "hepto-agent import-inventory FILE.ini --node NAME > PATH" (then chmod 600), or run the installer';

async function readText(path: string): Promise<string> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') {
      throw new HeptoError('CONFIG_UNREADABLE', `config ${path} does not exist`, { hint: CREATE_HINT.replace('PATH', path) });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new HeptoError('CONFIG_UNREADABLE', `config ${path} cannot be read (permission denied)`, {
        hint: 'run as root (the config is mode 0600), or pass --config with a file you can read',
      });
    }
    if (code === 'EISDIR') {
      throw new HeptoError('CONFIG_UNREADABLE', `config ${path} is a directory, not a file`, { hint: 'pass --config with the path of the JSON file' });
    }
    throw new HeptoError('CONFIG_UNREADABLE', `config ${path} cannot be read (${code ?? 'I/O error'})`, { hint: 'check the path and the disk' });
  }
}

function parseJson(path: string, text: string): unknown {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch {
    // JSON.parse messages quote the text around the error, which may be a key: never show them.
    const where = locateJsonError(body);
    const at = where ? ` at line ${where.line}, column ${where.column} (${where.expected})` : '';
    throw new HeptoError('CONFIG_UNREADABLE', `config ${path} is not valid JSON${at}`, {
      hint: 'fix the syntax: double quotes around names and strings, commas between fields, no trailing comma',
    });
  }
}

async function permissionWarnings(path: string): Promise<string[]> {
  try {
    const st = await fs.stat(path);
    const mode = st.mode & 0o7777;
    if ((mode & 0o044) !== 0) {
      const octal = mode.toString(8).padStart(4, '0');
      return [`config ${path} is readable by other users (mode ${octal}); run chmod 600 ${path}`];
    }
  } catch {
    // The file was just read; a failing stat changes nothing for the caller.
  }
  return [];
}

/** Reads and validates the config; registers every key so that no log line can show them. */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<LoadedConfig> {
  const raw = parseJson(path, await readText(path));
  if (raw && typeof raw === 'object') {
    const r = raw as Record<string, unknown>;
    for (const k of [r.overlay_key, r.cluster_key, r.agent_key, r.invite]) if (typeof k === 'string') registerSecret(k);
  }
  const { config, problems } = validateConfig(raw, { hostname: opts.hostname });
  if (!config) {
    const n = problems.length;
    throw new HeptoError('CONFIG_INVALID', `config ${path} has ${n} problem${n === 1 ? '' : 's'}`, {
      hint: 'fix each line below, then run "hepto-agent config validate"',
      details: problems,
    });
  }
  return { config, warnings: await permissionWarnings(path) };
}
