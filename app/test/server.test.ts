import assert from "node:assert/strict";
import net from "node:net";
import { freePort, request, spawnDist, stalledRequest, type Child } from "./helpers";

async function startServer(
  env: Record<string, string> = {},
): Promise<{ server: Child; port: number }> {
  const server = spawnDist("server.js", env);
  const listening = await server.waitFor("listening");
  return { server, port: Number(listening.port) };
}

function events(server: Child): unknown[] {
  return server.logs.filter((l) => l.event !== "request").map((l) => l.event);
}

describe("dist/server.js as a process (PID 1 behaviour)", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`stops cleanly with exit code 0 on ${signal}`, async () => {
      const { server, port } = await startServer();
      assert.equal((await request(port, { path: "/health" })).status, 200);

      const sent = Date.now();
      server.child.kill(signal);
      const { code, signal: killedBy, at } = await server.exited;
      assert.equal(killedBy, null, "the process handled the signal itself");
      assert.equal(code, 0);
      assert.ok(at - sent < 5000, `stopped in ${at - sent} ms`);
      assert.deepEqual(events(server), [
        "starting",
        "listening",
        "signal",
        "shutdown_started",
        "stopped",
      ]);
      assert.equal(server.logs.find((l) => l.event === "signal")?.signal, signal);
      assert.deepEqual(server.plain, [], "every stdout line is JSON");
      assert.equal(server.stderr(), "");
    });
  }

  it("serves /version from the build-time environment", async () => {
    const { server, port } = await startServer({
      APP_VERSION: "3.0.0",
      GIT_REVISION: "deadbeef",
      BUILD_CREATED: "2026-11-23T09:00:00Z",
    });
    try {
      const res = await request(port, { path: "/version" });
      assert.deepEqual(res.json(), {
        version: "3.0.0",
        revision: "deadbeef",
        created: "2026-11-23T09:00:00Z",
        node: process.version,
      });
      const logged = await server.waitFor("request");
      assert.equal(logged.path, "/version");
      assert.equal(logged.version, "3.0.0");
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  it("answers /ready with 503 while draining and exits at once on a second signal", async () => {
    const { server, port } = await startServer({
      SHUTDOWN_DELAY_MS: "4000",
      SHUTDOWN_TIMEOUT_MS: "8000",
    });
    server.child.kill("SIGTERM");
    await server.waitFor("shutdown_started");
    const ready = await request(port, { path: "/ready" });
    assert.equal(ready.status, 503);

    server.child.kill("SIGINT");
    const { code } = await server.exited;
    assert.equal(code, 1);
    assert.ok(server.logs.some((l) => l.event === "shutdown_interrupted"));
    // It left without sitting out the 4 s drain: the normal end of shutdown never came.
    assert.ok(!server.logs.some((l) => l.event === "stopped"));
  });

  it("forces exit with code 1 when a request outlives the shutdown deadline", async () => {
    const { server, port } = await startServer({ SHUTDOWN_TIMEOUT_MS: "500" });
    const socket = await stalledRequest(port);
    const sent = Date.now();
    server.child.kill("SIGTERM");
    const { code, at } = await server.exited;
    socket.destroy();
    assert.equal(code, 1);
    // Bounded: not before the 500 ms deadline, and well before Docker's 10 s SIGKILL.
    assert.ok(at - sent >= 500 && at - sent < 5000, `bounded shutdown took ${at - sent} ms`);
    assert.deepEqual(events(server).slice(-3), ["shutdown_started", "shutdown_forced", "stopped"]);
  });

  it("refuses to start on a bad PORT with exit code 2 and a log naming it", async () => {
    const server = spawnDist("server.js", { PORT: "http" });
    const { code } = await server.exited;
    assert.equal(code, 2);
    const fatal = server.logs.find((l) => l.event === "config_invalid");
    assert.equal(fatal?.level, "fatal");
    assert.equal(fatal?.variable, "PORT");
    assert.equal(fatal?.value, "http");
    assert.equal(fatal?.msg, 'PORT must be an integer from 0 to 65535, got "http"');
  });

  it("exits 1 with a clear log when the port is taken", async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    try {
      const server = spawnDist("server.js", { PORT: String(port) });
      const { code } = await server.exited;
      assert.equal(code, 1);
      const failed = server.logs.find((l) => l.event === "listen_failed");
      assert.equal(failed?.port, port);
      assert.match(
        String((failed?.err as { message?: string } | undefined)?.message),
        /EADDRINUSE/,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
