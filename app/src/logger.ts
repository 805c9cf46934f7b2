import pino, { type DestinationStream, type Logger } from "pino";
import type { BuildInfo, LogLevel } from "./config";

export type { Logger };

export const SERVICE_NAME = "image-factory-app";

/**
 * One JSON object per line on stdout. Writes are synchronous so that the last lines before a
 * process.exit() (shutdown, fatal config error) are never lost in a buffer.
 */
export function createLogger(
  level: LogLevel,
  build: BuildInfo,
  destination: DestinationStream = pino.destination({ dest: 1, sync: true }),
): Logger {
  return pino(
    {
      level,
      base: {
        service: SERVICE_NAME,
        version: build.version,
        revision: build.revision,
        pid: process.pid,
      },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names instead of pino's numbers: log pipelines filter on "error", not 50.
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
