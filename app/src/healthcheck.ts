// Container HEALTHCHECK probe: the image carries no curl or wget, so Node itself asks /health.
// Exit code 0 = healthy, 1 = unhealthy (Docker's contract for HEALTHCHECK commands).
import http from "node:http";

export interface ProbeTarget {
  host: string;
  port: number;
  timeoutMs: number;
}

const WILDCARDS = new Set(["", "0.0.0.0", "::", "[::]"]);

/** Where to probe: the service's own address, or loopback when it listens on every address. */
export function probeTarget(env: Readonly<Record<string, string | undefined>>): ProbeTarget {
  const host = (env.HOST ?? "").trim();
  const port = Number((env.PORT ?? "").trim() || "3000");
  return {
    host: WILDCARDS.has(host) ? "127.0.0.1" : host,
    port,
    timeoutMs: 2000,
  };
}

/** Resolves with a one-line verdict; never rejects, so the caller only maps it to an exit code. */
export function probe(target: ProbeTarget): Promise<{ healthy: boolean; detail: string }> {
  return new Promise((resolve) => {
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
      return resolve({
        healthy: false,
        detail: `GET /health not sent: PORT is not a port number (${String(target.port)})`,
      });
    }
    const req = http.get(
      {
        host: target.host,
        port: target.port,
        path: "/health",
        timeout: target.timeoutMs,
        agent: false,
      },
      (res) => {
        res.resume();
        const healthy = res.statusCode === 200;
        resolve({ healthy, detail: `GET /health -> ${res.statusCode ?? "no status"}` });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${target.timeoutMs} ms`)));
    req.on("error", (err) =>
      resolve({ healthy: false, detail: `GET /health failed: ${err.message}` }),
    );
  });
}

if (require.main === module) {
  void probe(probeTarget(process.env)).then(({ healthy, detail }) => {
    process.stdout.write(`${detail}\n`);
    process.exitCode = healthy ? 0 : 1;
  });
}
