import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { readConfig, type AppConfig } from "../src/config";
import { createLogger } from "../src/logger";
import { Service } from "../src/service";

export type LogLine = Record<string, unknown>;

export const DIST = path.resolve(__dirname, "..", "dist");

/** A pino destination that keeps every line, parsed, so tests can assert on log content. */
export function logCollector(): { lines: LogLine[]; write(chunk: string): void } {
  const lines: LogLine[] = [];
  return {
    lines,
    write(chunk: string): void {
      for (const line of chunk.split("\n").filter((l) => l !== ""))
        lines.push(JSON.parse(line) as LogLine);
    },
  };
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

export function request(
  port: number,
  options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    agent?: http.Agent;
  } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: options.path ?? "/",
        headers: options.headers,
        agent: options.agent ?? false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: (): unknown => JSON.parse(text) as unknown,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export interface Running {
  service: Service;
  port: number;
  logs: LogLine[];
  config: AppConfig;
}

/** The real service on 127.0.0.1 and a port the OS picks. */
export async function startService(env: Record<string, string> = {}): Promise<Running> {
  const config = readConfig({ HOST: "127.0.0.1", PORT: "0", ...env });
  const collector = logCollector();
  const service = new Service(config, createLogger(config.logLevel, config.build, collector));
  const { port } = await service.listen();
  return { service, port, logs: collector.lines, config };
}

/** A port nothing listens on (taken from the OS, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A socket that starts a request and never finishes its headers: an in-flight request forever. */
export async function stalledRequest(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => undefined);
  socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  // Let the server parse what arrived so the connection counts as busy, not idle.
  await new Promise((resolve) => setTimeout(resolve, 100));
  return socket;
}

export interface Child {
  child: ChildProcess;
  logs: LogLine[];
  /** Stdout lines that were not JSON (the server must print none). */
  plain: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves with the first log line whose event matches. */
  waitFor(event: string, timeoutMs?: number): Promise<LogLine>;
}

/**
 * Runs a compiled script from dist/ as its own process. The environment is inherited so that c8's
 * NODE_V8_COVERAGE reaches the child and its coverage counts too.
 */
export function spawnDist(script: string, env: Record<string, string>): Child {
  const child = spawn(process.execPath, [path.join(DIST, script)], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const plain: string[] = [];
  const waiters: Array<{ event: string; resolve: (line: LogLine) => void }> = [];
  let buffered = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    for (const part of parts.filter((p) => p !== "")) {
      let line: LogLine;
      try {
        line = JSON.parse(part) as LogLine;
      } catch {
        plain.push(part);
        continue;
      }
      logs.push(line);
      for (const waiter of waiters.filter((w) => w.event === line.event)) waiter.resolve(line);
    }
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => child.on("close", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    child,
    logs,
    plain,
    stderr: () => stderr,
    exited,
    waitFor(event: string, timeoutMs = 10_000): Promise<LogLine> {
      const seen = logs.find((l) => l.event === event);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`no "${event}" log line within ${timeoutMs} ms; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          event,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(
            new Error(
              `process exited before "${event}"; logs: ${JSON.stringify(logs)} stderr: ${stderr}`,
            ),
          );
        });
      });
    },
  };
}
