/**
 * A bunyan logger that keeps its records in memory, configured as the daemon's own (name driveshaft,
 * the err serializer), so a test reads the records the master would have written.
 */
import bunyan from 'bunyan';
import type { Logger } from '../../src/log/logger.js';

export type LogRecord = Record<string, unknown> & { msg: string; level: number };

export interface MemoryLogger {
  logger: Logger;
  /** Every record at `level` and above, in order, as bunyan hands them to a raw stream (time a Date). */
  records: LogRecord[];
  /** The records whose msg contains `text`. */
  find(text: string): LogRecord[];
}

export function memoryLogger(level: bunyan.LogLevel = 'trace'): MemoryLogger {
  const records: LogRecord[] = [];
  const stream = { write: (record: LogRecord) => void records.push(record) };
  const logger = bunyan.createLogger({
    name: 'driveshaft',
    level,
    streams: [{ type: 'raw', level, stream: stream as unknown as NodeJS.WritableStream }],
    serializers: { err: bunyan.stdSerializers.err },
  });
  return { logger, records, find: (text) => records.filter((record) => record.msg.includes(text)) };
}
