import { pino, type Logger } from 'pino';

/**
 * Operational log (not flows): JSON lines on stderr, like Envoy's own log. stdout stays free for
 * command output. Level from --log-level or L7GUARD_LOG_LEVEL.
 */
export function createLogger(level: string = process.env['L7GUARD_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
