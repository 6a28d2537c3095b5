import { pino, type Logger as PinoLogger } from 'pino';

export type { PinoLogger };

/** JSON logs on stdout (pino); `level` "silent" turns them off (the embedded CLI does). */
export function createLogger(service: string, level: string = 'info'): PinoLogger {
  return pino({ name: service, level, base: { service } });
}
