// Entry point (the container's PID 1). PID 1 gets no default signal handlers from the kernel, so
// SIGTERM/SIGINT are handled here explicitly, or `docker stop` would wait for its SIGKILL.
import { ConfigError, readBuildInfo, readConfig, type AppConfig } from "./config";
import { createLogger, type Logger } from "./logger";
import { Service } from "./service";

const SIGNALS = ["SIGTERM", "SIGINT"] as const;
// Past the service's own deadline, give the close callbacks this long before exiting regardless.
const EXIT_GRACE_MS = 1000;

function installSignalHandlers(service: Service, config: AppConfig, logger: Logger): void {
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      if (service.currentState === "draining") {
        // A second signal is an operator insisting (Ctrl-C twice): do not make them wait.
        logger.warn(
          { event: "shutdown_interrupted", signal },
          "second signal during shutdown, exiting now",
        );
        process.exit(1);
      }
      logger.info({ event: "signal", signal }, `received ${signal}`);
      setTimeout(() => {
        logger.error({ event: "exit_forced" }, "shutdown did not complete, exiting");
        process.exit(1);
      }, config.shutdownTimeoutMs + EXIT_GRACE_MS).unref();
      void service.shutdown(signal).then(({ forced }) => process.exit(forced ? 1 : 0));
    });
  }
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = readConfig(process.env);
  } catch (err) {
    const logger = createLogger("info", readBuildInfo(process.env));
    // A ConfigError's message is the whole story; a stack trace would only bury it.
    const detail =
      err instanceof ConfigError ? { variable: err.variable, value: err.value } : { err };
    logger.fatal(
      { event: "config_invalid", ...detail },
      err instanceof Error ? err.message : String(err),
    );
    process.exit(2);
  }

  const logger = createLogger(config.logLevel, config.build);
  process.on("uncaughtException", (err) => {
    logger.fatal({ event: "uncaught_exception", err }, "uncaught exception");
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    logger.fatal({ event: "unhandled_rejection", err: reason }, "unhandled promise rejection");
    process.exit(1);
  });

  logger.info(
    {
      event: "starting",
      node: process.version,
      build: config.build,
      host: config.host,
      port: config.port,
    },
    "starting",
  );
  const service = new Service(config, logger);
  installSignalHandlers(service, config, logger);
  try {
    await service.listen();
  } catch (err) {
    logger.fatal(
      { event: "listen_failed", host: config.host, port: config.port, err },
      "cannot listen",
    );
    process.exit(1);
  }
}

void main();
