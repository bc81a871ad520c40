import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** `json`: one object per line, the form log collectors expect; `text`: one readable line per event, for a person. */
export type LogFormat = 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

/** The format a process logs in when none is asked for: text on a terminal, JSON lines into a file or a pipe. */
export function defaultLogFormat(out: { isTTY?: boolean } = process.stdout): LogFormat {
  return out.isTTY ? 'text' : 'json';
}

/**
 * Structured logs on stdout: JSON lines, or (`text`) pino-pretty's rendering of the same events: time, level,
 * the process and the message, then the event's fields on the same line. `component` names the process
 * (coordinator or a participant's organisation). Secrets (keys, raw rows) are never passed to a logger.
 */
export function createLogger(component: string, level: string = 'info', format: LogFormat = defaultLogFormat()): Logger {
  const options = { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'json') return pino(options, pino.destination({ dest: 1, sync: true }));
  return pino(
    options,
    pretty({
      destination: 1,
      sync: true,
      singleLine: true,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      messageFormat: '{component}: {msg}',
      ignore: 'component',
    }),
  );
}
