import assert from "node:assert/strict";
import { ConfigError, DEFAULTS, readBuildInfo, readConfig } from "../src/config";

describe("readConfig", () => {
  it("applies the documented defaults to an empty environment", async () => {
    assert.deepEqual(readConfig({}), {
      host: "127.0.0.1",
      port: 3000,
      logLevel: "info",
      shutdownTimeoutMs: 5000,
      shutdownDelayMs: 0,
      build: { version: "unknown", revision: "unknown", created: "unknown" },
    });
    assert.equal(DEFAULTS.port, 3000);
  });

  it("reads every variable it documents", async () => {
    const config = readConfig({
      HOST: "0.0.0.0",
      PORT: "8080",
      LOG_LEVEL: "DEBUG",
      SHUTDOWN_TIMEOUT_MS: "3000",
      SHUTDOWN_DELAY_MS: "1000",
      APP_VERSION: "1.4.2",
      GIT_REVISION: "0123456789abcdef0123456789abcdef01234567",
      BUILD_CREATED: "2026-11-23T10:00:00Z",
    });
    assert.deepEqual(config, {
      host: "0.0.0.0",
      port: 8080,
      logLevel: "debug",
      shutdownTimeoutMs: 3000,
      shutdownDelayMs: 1000,
      build: {
        version: "1.4.2",
        revision: "0123456789abcdef0123456789abcdef01234567",
        created: "2026-11-23T10:00:00Z",
      },
    });
  });

  it("treats empty build values (an unset build arg baked into ENV) as unknown", async () => {
    assert.deepEqual(
      readBuildInfo({ APP_VERSION: "", GIT_REVISION: "  ", BUILD_CREATED: undefined }),
      {
        version: "unknown",
        revision: "unknown",
        created: "unknown",
      },
    );
  });

  for (const bad of ["abc", "70000", "-1", "3.5", "80 80"]) {
    it(`rejects PORT=${JSON.stringify(bad)} naming the variable and the value`, async () => {
      assert.throws(
        () => readConfig({ PORT: bad }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.variable === "PORT" &&
          err.message === `PORT must be an integer from 0 to 65535, got ${JSON.stringify(bad)}`,
      );
    });
  }

  it("rejects an unknown LOG_LEVEL", async () => {
    assert.throws(
      () => readConfig({ LOG_LEVEL: "loud" }),
      /LOG_LEVEL must be one of fatal, .*, got "loud"/,
    );
  });

  it("rejects a HOST with spaces", async () => {
    assert.throws(() => readConfig({ HOST: "local host" }), /HOST must be .*, got "local host"/);
  });

  it("rejects a zero SHUTDOWN_TIMEOUT_MS", async () => {
    assert.throws(
      () => readConfig({ SHUTDOWN_TIMEOUT_MS: "0" }),
      /SHUTDOWN_TIMEOUT_MS must be an integer from 1/,
    );
  });

  it("rejects a drain delay that would use up the whole shutdown deadline", async () => {
    assert.throws(
      () => readConfig({ SHUTDOWN_TIMEOUT_MS: "2000", SHUTDOWN_DELAY_MS: "2000" }),
      /SHUTDOWN_DELAY_MS must be less than SHUTDOWN_TIMEOUT_MS \(2000\), got "2000"/,
    );
  });
});
