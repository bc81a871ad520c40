import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (one object per line) on stdout, the form log collectors expect. `component` names the
 * process (coordinator or a participant's organisation). Secrets (keys, raw rows) are never passed to a logger.
 */
export function createLogger(component: string, level: string = 'info'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}
