// Loopback HTTP helpers for tests of running containers.
import * as net from "net";

/** A TCP port free on 127.0.0.1 right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface HttpResult {
  status: number;
  body: string;
  headers: Headers;
}

/** GET on loopback only; rejects on connection errors (callers poll with waitFor). */
export async function httpGet(url: string, timeoutMs = 5000): Promise<HttpResult> {
  const host = new URL(url).hostname;
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "[::1]") {
    throw new Error(`refusing to request ${url}: tests only talk to loopback`);
  }
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}
