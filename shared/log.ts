/**
 * Journald-friendly logging: one event per line, a constant message plus
 * structured context. `plain` prints `level module: message k=v ...`,
 * `json` prints one JSON object per line. Secrets never reach the output:
 * fields named like keys are redacted and every registered secret string is
 * scrubbed from all values.
 */
import { printable, UNSAFE_CHARS } from './printable';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'plain' | 'json';
export type LogContext = Record<string, unknown>;

export interface Logger {
  debug(msg: string, ctx?: LogContext): void;
  info(msg: string, ctx?: LogContext): void;
  warn(msg: string, ctx?: LogContext): void;
  error(msg: string, ctx?: LogContext): void;
  child(module: string): Logger;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** syslog priorities, so journald colours and filters by level (`<3>` prefix). */
const PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

const SECRET_FIELD = /(^|_|-)(key|secret|token|password|passphrase)$/i;
const secrets = new Set<string>();

/** Registers a secret so that it is scrubbed from every log line, whatever field it hides in. */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 8) secrets.add(value);
}

export function scrub(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join('[redacted]');
  }
  return out;
}

function sanitize(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return scrub(value.message);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 4) return '[…]';
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1));
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_FIELD.test(k) ? '[redacted]' : sanitize(v, depth + 1);
  }
  return out;
}

function plainValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[\s"=]/.test(s) || UNSAFE_CHARS.test(s) ? JSON.stringify(s) : s;
}

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go; defaults to stderr. Tests pass an array-backed sink. */
  sink?: (line: string) => void;
  /** Prefix plain lines with `<N>` syslog priority (set when running under systemd). */
  syslogPrefix?: boolean;
  /** Clock for the `ts` field of JSON lines. */
  now?: () => number;
}

export function createLogger(opts: LoggerOptions = {}, module = 'agent'): Logger {
  const format = opts.format ?? 'plain';
  const min = LEVELS[opts.level ?? 'info'];
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = opts.now ?? Date.now;

  const emit = (level: LogLevel, msg: string, ctx?: LogContext): void => {
    if (LEVELS[level] < min) return;
    const clean = (ctx ? sanitize(ctx) : {}) as LogContext;
    const message = scrub(msg);
    let line: string;
    if (format === 'json') {
      line = JSON.stringify({ ts: new Date(now()).toISOString(), level, module, msg: message, ...clean });
    } else {
      const fields = Object.entries(clean)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${plainValue(v)}`)
        .join(' ');
      const prefix = opts.syslogPrefix ? `<${PRIORITY[level]}>` : '';
      line = `${prefix}${level} ${module}: ${message}${fields ? ' ' + fields : ''}`;
    }
    // One event per line, and nothing that drives a terminal, whatever a peer put in a field.
    sink(printable(line));
  };

  return {
    debug: (m, c) => emit('debug', m, c),
    info: (m, c) => emit('info', m, c),
    warn: (m, c) => emit('warn', m, c),
    error: (m, c) => emit('error', m, c),
    child: (name: string) => createLogger(opts, `${module}.${name}`),
  };
}
