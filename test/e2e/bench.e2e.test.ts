// `npm run bench` works end to end in its smallest form (`--dry`: one round, linux/amd64 only, cold
// and no-op, no emulation, no README or docs/bench.svg): its own buildkitd on a free port started by
// scripts/buildkit.sh, the factory's `pulumi up` through scripts/local.sh on a fresh stack, and the
// seed pipeline's commands (buildx build --push with a registry cache, Syft, Trivy). Times are not
// judged here; what is checked is that every run was measured and recorded, that the no-op built
// and scanned nothing, and that the bench cleaned up after itself.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ScenarioResult } from "../../scripts/bench/judge";
import type { RunRecord } from "../../scripts/bench/model";
import { REPO_ROOT, bootstrapOnce, freePort, run, tail } from "./lib";

interface BenchJson {
  id: string;
  machine: { nproc: number; memoryGiB: number; cpuModel: string };
  results: ScenarioResult[];
  runs: RunRecord[];
  tools: Array<{ tool: string; seconds?: number }>;
}

describe("npm run bench -- --dry", function () {
  this.timeout(40 * 60_000);

  it("runs both paths on one platform, measures every phase and leaves nothing running", async () => {
    await bootstrapOnce();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "if-bench-"));
    const port = await freePort();
    const svg = path.join(REPO_ROOT, "docs", "bench.svg");
    const svgBefore = fs.existsSync(svg) ? fs.statSync(svg).mtimeMs : 0;
    try {
      const r = await run(
        "npm",
        [
          "run",
          "-s",
          "bench",
          "--",
          "--dry",
          "--skip-bootstrap",
          "--port",
          String(port),
          "--out",
          out,
        ],
        { cwd: REPO_ROOT, timeoutMs: 40 * 60_000 },
      );
      assert.equal(r.code, 0, tail(`${r.stdout}\n${r.stderr}`, 40));
      // Markdown on stdout.
      assert.match(r.stdout, /\| scenario \| factory s \(min \/ median \/ max\) \| peer s/);
      assert.match(r.stdout, /\| cold \(empty BuildKit state, fresh repositories\) \|/);

      const json = JSON.parse(fs.readFileSync(path.join(out, "latest.json"), "utf8")) as BenchJson;
      assert.ok(
        json.machine.nproc >= 1 && json.machine.memoryGiB > 0 && json.machine.cpuModel !== "",
      );
      for (const scenario of ["cold", "noop"]) {
        for (const p of ["factory", "peer"]) {
          const rec = json.runs.find((x) => x.scenario === scenario && x.path === p);
          assert.ok(rec !== undefined, `no ${p} ${scenario} run`);
          assert.ok(rec.wallSeconds > 0);
          const sum = Object.values(rec.segments).reduce((a, b) => a + b, 0);
          assert.ok(
            Math.abs(sum - rec.wallSeconds) < 0.5,
            `${p} ${scenario}: segments add up to ${sum}, wall ${rec.wallSeconds}`,
          );
        }
      }
      const cold = json.runs.find((x) => x.scenario === "cold" && x.path === "factory");
      assert.ok(
        // One scan per platform (the dry run builds one) and one of the build context.
        (cold?.builds ?? 0) >= 1 && cold?.scans === 2,
        `factory cold: ${JSON.stringify(cold)}`,
      );
      assert.ok(
        cold !== undefined &&
          Object.keys(cold.detail).some((k) => k.startsWith("evidence syft linux/amd64")),
        "the evidence tools' own timings are read",
      );
      // The CPU each run cost the machine, and where it went: the factory's cold run works in the
      // engine, BuildKit's containers and the scanners; the peer's in Syft too.
      for (const rec of json.runs)
        assert.ok((rec.cpuSeconds ?? 0) > 0, `${rec.path} ${rec.scenario}: no CPU measured`);
      for (const c of ["Pulumi CLI (engine)", "build steps (in BuildKit's containers)", "syft"])
        assert.ok(
          (cold?.cpuBy?.[c] ?? 0) > 0,
          `factory cold: no CPU for ${c}: ${JSON.stringify(cold?.cpuBy)}`,
        );
      const peerColdCpu = json.runs.find((x) => x.scenario === "cold" && x.path === "peer")?.cpuBy;
      assert.ok((peerColdCpu?.syft ?? 0) > 0, `peer cold: ${JSON.stringify(peerColdCpu)}`);
      assert.match(r.stdout, /\| scenario \| factory CPU s \(median\) \| peer CPU s/);
      const noop = json.runs.find((x) => x.scenario === "noop" && x.path === "factory");
      assert.deepEqual(
        { builds: noop?.builds, scans: noop?.scans, buildkitRecords: noop?.buildkitRecords },
        { builds: 0, scans: 0, buildkitRecords: 0 },
      );
      const peerCold = json.runs.find((x) => x.scenario === "cold" && x.path === "peer");
      assert.deepEqual(
        { builds: peerCold?.builds, scans: peerCold?.scans },
        { builds: 1, scans: 2 },
      );
      assert.ok(
        json.tools.some((t) => t.tool === "Trivy" && (t.seconds ?? 0) > 0),
        "tool build times come from the build-seconds files",
      );
      assert.ok(
        !fs.existsSync(path.join(REPO_ROOT, ".local", "bench", json.id)),
        "--dry left its work folder behind",
      );

      // --dry leaves docs/bench.svg (and README.md) alone, and stops its daemon and builders.
      assert.equal(
        fs.existsSync(svg) ? fs.statSync(svg).mtimeMs : 0,
        svgBefore,
        "--dry rewrote docs/bench.svg",
      );
      const probe = await run("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
      assert.notEqual(probe.code, 0, `something still listens on 127.0.0.1:${port}`);
      const builders = await run("docker", ["buildx", "ls"]);
      assert.ok(!builders.stdout.includes(`image-factory-bench-${port}`), builders.stdout);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
