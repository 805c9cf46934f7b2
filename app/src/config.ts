// Reads the service's settings from the environment once at start-up, so that bad input stops the
// process before it listens, with an error that names the variable and the offending value.

export interface BuildInfo {
  /** Release version baked in at image build time (APP_VERSION). */
  version: string;
  /** Git commit the image was built from (GIT_REVISION). */
  revision: string;
  /** RFC 3339 build time (BUILD_CREATED). */
  created: string;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AppConfig {
  host: string;
  port: number;
  logLevel: LogLevel;
  /** Upper bound for the whole shutdown (drain delay included); past it connections are cut. */
  shutdownTimeoutMs: number;
  /** Time /ready answers 503 while still serving, so a load balancer can stop routing first. */
  shutdownDelayMs: number;
  build: BuildInfo;
}

export const DEFAULTS = {
  // Loopback unless told otherwise: the image sets HOST=0.0.0.0 because a container must accept
  // traffic from its network namespace, but a developer running `npm start` exposes nothing.
  host: "127.0.0.1",
  port: 3000,
  logLevel: "info" as LogLevel,
  // Docker's `stop` waits 10 s before SIGKILL; finishing within 5 s leaves a wide margin.
  shutdownTimeoutMs: 5000,
  shutdownDelayMs: 0,
} as const;

export const UNKNOWN = "unknown";

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string,
    expectation: string,
  ) {
    super(`${variable} must be ${expectation}, got ${JSON.stringify(value)}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Unset and empty are the same: Docker turns an unset build arg into an empty ENV value. */
function present(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = present(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, env[name] ?? "", `an integer from ${min} to ${max}`);
  }
  return Number(raw);
}

function logLevel(env: Env): LogLevel {
  const raw = present(env, "LOG_LEVEL");
  if (raw === undefined) return DEFAULTS.logLevel;
  const level = LOG_LEVELS.find((l) => l === raw.toLowerCase());
  if (level === undefined)
    throw new ConfigError("LOG_LEVEL", raw, `one of ${LOG_LEVELS.join(", ")}`);
  return level;
}

export function readBuildInfo(env: Env): BuildInfo {
  return {
    version: present(env, "APP_VERSION") ?? UNKNOWN,
    revision: present(env, "GIT_REVISION") ?? UNKNOWN,
    created: present(env, "BUILD_CREATED") ?? UNKNOWN,
  };
}

export function readConfig(env: Env): AppConfig {
  const host = present(env, "HOST") ?? DEFAULTS.host;
  if (/\s/.test(host))
    throw new ConfigError("HOST", host, "an address or host name without spaces");
  const shutdownTimeoutMs = integer(
    env,
    "SHUTDOWN_TIMEOUT_MS",
    DEFAULTS.shutdownTimeoutMs,
    1,
    600_000,
  );
  const shutdownDelayMs = integer(env, "SHUTDOWN_DELAY_MS", DEFAULTS.shutdownDelayMs, 0, 600_000);
  if (shutdownDelayMs >= shutdownTimeoutMs) {
    throw new ConfigError(
      "SHUTDOWN_DELAY_MS",
      String(shutdownDelayMs),
      `less than SHUTDOWN_TIMEOUT_MS (${shutdownTimeoutMs})`,
    );
  }
  return {
    host,
    port: integer(env, "PORT", DEFAULTS.port, 0, 65535),
    logLevel: logLevel(env),
    shutdownTimeoutMs,
    shutdownDelayMs,
    build: readBuildInfo(env),
  };
}
