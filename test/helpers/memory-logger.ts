import { createLogger, type LogFormat, type LogLevel, type Logger } from '../../shared/log';

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(level: LogLevel = 'debug', format: LogFormat = 'json'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ format, level, sink: (l) => lines.push(l), now: () => 0 }), lines };
}
