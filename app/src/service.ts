import { randomUUID } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AppConfig } from "./config";
import type { Logger } from "./logger";

export type State = "created" | "ready" | "draining" | "stopped";

export interface ShutdownResult {
  /** True when the deadline passed and open connections were cut. */
  forced: boolean;
  durationMs: number;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

type Handler = () => Reply;

const ALLOWED_METHODS = ["GET", "HEAD"];
// Client-supplied request ids are echoed into logs and headers: accept only a tame shape.
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export class Service {
  readonly server: http.Server;
  private state: State = "created";
  private shutdownPromise: Promise<ShutdownResult> | undefined;
  private readonly startedAt = Date.now();
  private readonly routes: ReadonlyMap<string, Handler>;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: Logger,
  ) {
    this.routes = new Map<string, Handler>([
      [
        "/health",
        () => ({ status: 200, body: { status: "ok", uptimeSeconds: this.uptimeSeconds() } }),
      ],
      [
        "/ready",
        () =>
          this.state === "ready"
            ? { status: 200, body: { status: "ready" } }
            : {
                status: 503,
                body: { status: this.state === "created" ? "starting" : "shutting_down" },
              },
      ],
      ["/version", () => ({ status: 200, body: { ...this.config.build, node: process.version } })],
    ]);
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  get currentState(): State {
    return this.state;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once("error", onError);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off("error", onError);
        resolve();
      });
    });
    this.state = "ready";
    const address = this.server.address() as AddressInfo;
    this.logger.info(
      { event: "listening", address: address.address, port: address.port },
      "listening",
    );
    return address;
  }

  /**
   * Stops taking traffic: /ready turns 503 at once, new connections are still served for
   * shutdownDelayMs (so a load balancer sees the 503 and stops routing), then the listener closes
   * and in-flight requests finish. Whatever is still open at shutdownTimeoutMs is cut.
   * Idempotent: a second call returns the first call's promise.
   */
  shutdown(reason: string): Promise<ShutdownResult> {
    this.shutdownPromise ??= this.runShutdown(reason);
    return this.shutdownPromise;
  }

  private async runShutdown(reason: string): Promise<ShutdownResult> {
    const started = Date.now();
    const { shutdownDelayMs, shutdownTimeoutMs } = this.config;
    this.state = "draining";
    this.logger.info(
      { event: "shutdown_started", reason, shutdownDelayMs, shutdownTimeoutMs },
      "shutting down",
    );

    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      deadline = setTimeout(() => resolve("timeout"), shutdownTimeoutMs);
    });
    const closed = (async (): Promise<"closed"> => {
      if (shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, shutdownDelayMs));
      await new Promise<void>((resolve) => {
        if (!this.server.listening) return resolve();
        this.server.close(() => resolve());
        // Keep-alive sockets with no request in flight would hold close() open until they time out.
        this.server.closeIdleConnections();
      });
      return "closed";
    })();

    const outcome = await Promise.race([closed, timedOut]);
    clearTimeout(deadline);
    const forced = outcome === "timeout";
    if (forced) {
      this.server.closeAllConnections();
      this.logger.warn(
        { event: "shutdown_forced", shutdownTimeoutMs },
        "shutdown deadline passed, connections cut",
      );
    }
    this.state = "stopped";
    const durationMs = Date.now() - started;
    this.logger.info({ event: "stopped", forced, durationMs }, "stopped");
    return { forced, durationMs };
  }

  private uptimeSeconds(): number {
    return Math.round((Date.now() - this.startedAt) / 1000);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const header = req.headers["x-request-id"];
    const requestId = typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
    const method = req.method ?? "GET";
    const path = pathOf(req.url);

    res.on("close", () => {
      this.logger.info(
        {
          event: "request",
          requestId,
          method,
          path,
          status: res.statusCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        },
        "request",
      );
    });

    const reply = this.route(method, path);
    const body = JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "x-request-id": requestId,
      // Lets keep-alive clients know to reconnect (and so reach another instance) while draining.
      ...(this.state === "ready" ? {} : { connection: "close" }),
      ...reply.headers,
    });
    // Node omits the body of a HEAD response itself.
    res.end(body);
  }

  private route(method: string, path: string | undefined): Reply {
    if (path === undefined) {
      return {
        status: 400,
        body: { error: "bad_request", message: "The request target is not a valid path" },
      };
    }
    const handler = this.routes.get(path);
    if (handler === undefined) {
      return {
        status: 404,
        body: { error: "not_found", message: `No route for ${method} ${path}`, path },
      };
    }
    if (!ALLOWED_METHODS.includes(method)) {
      return {
        status: 405,
        body: {
          error: "method_not_allowed",
          message: `${method} is not allowed on ${path}`,
          allow: ALLOWED_METHODS,
        },
        headers: { allow: ALLOWED_METHODS.join(", ") },
      };
    }
    return handler();
  }
}

/** The path without query string, or undefined when the target is not an origin-form path. */
export function pathOf(target: string | undefined): string | undefined {
  // Plain string split rather than new URL(): "//health" must stay a path, not become a host.
  if (target === undefined || !target.startsWith("/")) return undefined;
  return target.split(/[?#]/, 1)[0];
}
