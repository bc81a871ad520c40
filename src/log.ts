import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (one object per line) on stdout, the form log collectors expect. `component` names the
 * process (coordinator or a participant's organisation). Secrets (keys, raw rows) are never passed to a logger.
 */
export function createLogger(component: string, level: string = 'info'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}

/** A logger that discards everything (library use and tests that assert on return values). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
