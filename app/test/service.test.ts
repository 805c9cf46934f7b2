import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { readConfig } from "../src/config";
import { createLogger } from "../src/logger";
import { pathOf, Service } from "../src/service";
import { freePort, request, stalledRequest, startService, type Running } from "./helpers";

describe("service over HTTP", () => {
  let running: Running;

  beforeEach(async () => {
    running = await startService({
      APP_VERSION: "2.3.4",
      GIT_REVISION: "1a2b3c4d5e6f",
      BUILD_CREATED: "2026-11-23T12:00:00Z",
    });
  });

  afterEach(async () => {
    await running.service.shutdown("test done");
  });

  it("answers GET /health with 200 JSON", async () => {
    const res = await request(running.port, { path: "/health" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(res.headers["cache-control"], "no-store");
    const body = res.json() as { status: string; uptimeSeconds: number };
    assert.equal(body.status, "ok");
    assert.equal(typeof body.uptimeSeconds, "number");
  });

  it("answers GET /ready with 200 while serving", async () => {
    const res = await request(running.port, { path: "/ready" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { status: "ready" });
  });

  it("reports the build's version, revision and creation time on /version", async () => {
    const res = await request(running.port, { path: "/version" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), {
      version: "2.3.4",
      revision: "1a2b3c4d5e6f",
      created: "2026-11-23T12:00:00Z",
      node: process.version,
    });
  });

  it("ignores the query string when routing", async () => {
    const res = await request(running.port, { path: "/health?verbose=1" });
    assert.equal(res.status, 200);
  });

  it("answers HEAD with headers and no body", async () => {
    const res = await request(running.port, { method: "HEAD", path: "/health" });
    assert.equal(res.status, 200);
    assert.equal(res.text, "");
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
  });

  for (const path of ["/nope", "/health/", "//health", "/"]) {
    it(`answers ${path} with a JSON 404`, async () => {
      const res = await request(running.port, { path });
      assert.equal(res.status, 404);
      assert.deepEqual(res.json(), {
        error: "not_found",
        message: `No route for GET ${path}`,
        path,
      });
    });
  }

  for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    it(`answers ${method} /version with 405 and an Allow header`, async () => {
      const res = await request(running.port, { method, path: "/version" });
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, "GET, HEAD");
      assert.deepEqual(res.json(), {
        error: "method_not_allowed",
        message: `${method} is not allowed on /version`,
        allow: ["GET", "HEAD"],
      });
    });
  }

  it("answers a request target that is not a path with 400", async () => {
    const socket = net.connect(running.port, "127.0.0.1");
    socket.write("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let raw = "";
    socket.setEncoding("utf8");
    for await (const chunk of socket) raw += chunk as string;
    assert.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(raw, /"error":"bad_request"/);
  });

  it("logs one JSON line per request with method, path, status and duration", async () => {
    await request(running.port, { path: "/health?x=1" });
    await request(running.port, { method: "POST", path: "/ready" });
    await request(running.port, { path: "/missing" });
    const lines = running.logs.filter((l) => l.event === "request");
    assert.deepEqual(
      lines.map((l) => [l.method, l.path, l.status]),
      [
        ["GET", "/health", 200],
        ["POST", "/ready", 405],
        ["GET", "/missing", 404],
      ],
    );
    for (const line of lines) {
      assert.equal(line.level, "info");
      assert.equal(line.service, "image-factory-app");
      assert.equal(line.version, "2.3.4");
      assert.equal(typeof line.durationMs, "number");
      assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
    }
  });

  it("echoes a well-formed X-Request-Id and replaces a malformed one", async () => {
    const kept = await request(running.port, {
      path: "/health",
      headers: { "x-request-id": "abc-123" },
    });
    assert.equal(kept.headers["x-request-id"], "abc-123");
    const replaced = await request(running.port, {
      path: "/health",
      headers: { "x-request-id": "has space" },
    });
    assert.match(
      String(replaced.headers["x-request-id"]),
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    const tooLong = await request(running.port, {
      path: "/health",
      headers: { "x-request-id": "a".repeat(129) },
    });
    assert.notEqual(tooLong.headers["x-request-id"], "a".repeat(129));
    const ids = running.logs.filter((l) => l.event === "request").map((l) => l.requestId);
    assert.deepEqual(ids, [
      "abc-123",
      replaced.headers["x-request-id"],
      tooLong.headers["x-request-id"],
    ]);
  });
});

describe("service lifecycle", () => {
  it("turns /ready to 503 during the drain delay, keeps serving, then stops listening", async () => {
    const { service, port, logs } = await startService({
      SHUTDOWN_DELAY_MS: "400",
      SHUTDOWN_TIMEOUT_MS: "3000",
    });
    const stopping = service.shutdown("SIGTERM");
    assert.equal(service.currentState, "draining");

    const ready = await request(port, { path: "/ready" });
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json(), { status: "shutting_down" });
    assert.equal(ready.headers.connection, "close");
    const health = await request(port, { path: "/health" });
    assert.equal(health.status, 200);

    const result = await stopping;
    assert.equal(result.forced, false);
    // Timers run on libuv's loop clock, whole milliseconds behind the wall clock the service reads:
    // a 400 ms delay can measure 399 ms (seen in a BuildKit test stage), never less.
    assert.ok(result.durationMs >= 399, `drain delay honoured, took ${result.durationMs} ms`);
    assert.equal(service.currentState, "stopped");
    await assert.rejects(request(port, { path: "/health" }), /ECONNREFUSED/);
    assert.deepEqual(
      logs.filter((l) => typeof l.event === "string" && l.event !== "request").map((l) => l.event),
      ["listening", "shutdown_started", "stopped"],
    );
  });

  it("returns the same shutdown to a second caller", async () => {
    const { service } = await startService();
    const first = service.shutdown("SIGTERM");
    assert.equal(service.shutdown("SIGINT"), first);
    assert.equal((await first).forced, false);
  });

  it("closes idle keep-alive connections instead of waiting for them", async () => {
    const { service, port } = await startService({ SHUTDOWN_TIMEOUT_MS: "3000" });
    const agent = new http.Agent({ keepAlive: true });
    await request(port, { path: "/health", agent });
    const result = await service.shutdown("SIGTERM");
    agent.destroy();
    assert.equal(result.forced, false);
    assert.ok(
      result.durationMs < 1000,
      `idle connection did not hold shutdown (${result.durationMs} ms)`,
    );
  });

  it("cuts a stalled request once the shutdown deadline passes", async () => {
    const { service, port, logs } = await startService({ SHUTDOWN_TIMEOUT_MS: "300" });
    const socket = await stalledRequest(port);
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const result = await service.shutdown("SIGTERM");
    assert.equal(result.forced, true);
    // 299: the loop clock's whole milliseconds, as for the drain delay above.
    assert.ok(result.durationMs >= 299 && result.durationMs < 2000, `took ${result.durationMs} ms`);
    await closed;
    assert.ok(logs.some((l) => l.event === "shutdown_forced" && l.level === "warn"));
  });

  it("shuts down at once when it never listened", async () => {
    const config = readConfig({});
    const service = new Service(config, createLogger("silent", config.build));
    assert.equal(service.currentState, "created");
    const result = await service.shutdown("SIGTERM");
    assert.equal(result.forced, false);
    assert.equal(service.currentState, "stopped");
  });

  it("rejects listen when the port is taken", async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    try {
      await assert.rejects(startService({ PORT: String(port) }), /EADDRINUSE/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

describe("pathOf", () => {
  it("strips query and fragment and refuses non-path targets", async () => {
    assert.equal(pathOf("/a/b?c=d#e"), "/a/b");
    assert.equal(pathOf("/x#y"), "/x");
    assert.equal(pathOf("*"), undefined);
    assert.equal(pathOf("http://example.test/health"), undefined);
    assert.equal(pathOf(undefined), undefined);
  });
});
