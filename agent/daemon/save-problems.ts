/**
 * Failed saves of state files (peers.json, keys.json, admission.json, ...) as
 * status problems. A save that fails is otherwise only a log line, and the
 * agent goes on with state that a restart would lose. Each file has at most
 * one line: its last failure, until its next successful save clears it.
 *
 * The lines name the file, the error and what to do; never the content. An
 * error that is not a HeptoError (whose messages never carry data) is shown
 * by its errno code, or by a shortened first line of its message with long
 * base64/hex runs removed.
 */
import { errnoCode, isHeptoError } from '../../shared/errors';

interface Failure {
  error: string;
  hint: string;
  /** When the first failure of this run of failures happened (ms since the epoch). */
  since: number;
  count: number;
}

const DEFAULT_HINT = 'check the filesystem of the state directory (free space, read-only, permissions); the agent saves again on the next change';
const MAX_TEXT = 400;

/** One line, no control characters; with `redact`, no long runs that could be key material. */
function clean(text: string, redact = false): string {
  let line = (text.split('\n')[0] ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .trim();
  if (redact) line = line.replace(/[A-Za-z0-9+/=_-]{32,}/g, '[redacted]');
  return line.length > MAX_TEXT ? `${line.slice(0, MAX_TEXT)}…` : line;
}

function describe(error: unknown): { error: string; hint: string } {
  if (isHeptoError(error)) return { error: clean(error.message), hint: error.hint ? clean(error.hint) : DEFAULT_HINT };
  const code = errnoCode(error);
  if (code !== undefined) {
    const syscall = (error as { syscall?: unknown }).syscall;
    return { error: typeof syscall === 'string' ? `${syscall}: ${clean(code)}` : clean(code), hint: DEFAULT_HINT };
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { error: clean(text, true), hint: DEFAULT_HINT };
}

export class SaveProblems {
  private readonly failures = new Map<string, Failure>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records that saving `file` failed with `error` (kept until `ok(file)`). */
  failed(file: string, error: unknown): void {
    const d = describe(error);
    const prev = this.failures.get(file);
    this.failures.set(file, { ...d, since: prev?.since ?? this.now(), count: (prev?.count ?? 0) + 1 });
  }

  /** `file` was saved: its problem, if any, is gone. */
  ok(file: string): void {
    this.failures.delete(file);
  }

  /** Files whose last save failed. */
  files(): string[] {
    return [...this.failures.keys()].sort();
  }

  /** One status problem line per file whose last save failed, sorted by file. */
  problems(): string[] {
    return this.files().map((file) => {
      const f = this.failures.get(file)!;
      const times = f.count === 1 ? 'once' : `${f.count} times`;
      const error = f.error.includes(file) ? f.error : `${file}: ${f.error}`;
      return `state not saved: ${error} (failed ${times} since ${new Date(f.since).toISOString()}; the agent runs on, but a restart loses the change): ${f.hint}`;
    });
  }
}
