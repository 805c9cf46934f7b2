import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { probe, probeTarget } from "../src/healthcheck";
import { freePort, spawnDist, startService } from "./helpers";

async function serve(
  handler: http.RequestListener,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("healthcheck probe", () => {
  it("targets loopback when the service listens on every address", async () => {
    for (const host of [undefined, "", "0.0.0.0", "::"]) {
      assert.equal(probeTarget({ HOST: host, PORT: "8080" }).host, "127.0.0.1");
    }
    assert.deepEqual(probeTarget({ HOST: "::1" }), { host: "::1", port: 3000, timeoutMs: 2000 });
  });

  it("is healthy against the running service", async () => {
    const { service, port } = await startService();
    try {
      assert.deepEqual(await probe({ host: "127.0.0.1", port, timeoutMs: 2000 }), {
        healthy: true,
        detail: "GET /health -> 200",
      });
    } finally {
      await service.shutdown("test done");
    }
  });

  it("is unhealthy when nothing listens", async () => {
    const result = await probe({ host: "127.0.0.1", port: await freePort(), timeoutMs: 2000 });
    assert.equal(result.healthy, false);
    assert.match(result.detail, /ECONNREFUSED/);
  });

  it("is unhealthy on a non-200 answer", async () => {
    const server = await serve((_req, res) => res.writeHead(500).end());
    try {
      assert.deepEqual(await probe({ host: "127.0.0.1", port: server.port, timeoutMs: 2000 }), {
        healthy: false,
        detail: "GET /health -> 500",
      });
    } finally {
      await server.close();
    }
  });

  it("is unhealthy when the answer does not come in time", async () => {
    const server = await serve(() => undefined);
    try {
      const result = await probe({ host: "127.0.0.1", port: server.port, timeoutMs: 200 });
      assert.deepEqual(result, {
        healthy: false,
        detail: "GET /health failed: no answer within 200 ms",
      });
    } finally {
      await server.close();
    }
  });

  it("is unhealthy, not crashing, on an invalid port", async () => {
    const result = await probe(probeTarget({ PORT: "not-a-port" }));
    assert.equal(result.healthy, false);
    assert.equal(result.detail, "GET /health not sent: PORT is not a port number (NaN)");
  });
});

describe("dist/healthcheck.js (the HEALTHCHECK command)", () => {
  it("exits 0 against the running service and 1 when it is gone", async () => {
    const { service, port } = await startService();
    const healthy = spawnDist("healthcheck.js", { PORT: String(port), HOST: "0.0.0.0" });
    assert.equal((await healthy.exited).code, 0);
    await service.shutdown("test done");
    const unhealthy = spawnDist("healthcheck.js", { PORT: String(port), HOST: "0.0.0.0" });
    assert.equal((await unhealthy.exited).code, 1);
  });
});
