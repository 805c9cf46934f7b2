// The bench's CPU figures (scripts/bench/monitor.ts cpuBusySeconds, scripts/bench/cpuProfile.ts,
// the CPU tables): what a run cost the machine, the wall time no schedule of that work can beat,
// and where the CPU went.
import * as assert from "node:assert/strict";
import { CpuSampler, componentOf, parseProcStat } from "../../scripts/bench/cpuProfile";
import { judge } from "../../scripts/bench/judge";
import type { RunRecord } from "../../scripts/bench/model";
import { cpuBusySeconds } from "../../scripts/bench/monitor";
import { notMet } from "../../scripts/bench/render";
import { cpuByTable, cpuTable } from "../../scripts/bench/tables";
import { record } from "./benchFixtures";

describe("bench: the machine's busy CPU", () => {
  // user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ ticks
  const stat = [
    "cpu  1000 20 300 50000 400 5 70 900 0 0",
    "cpu0 500 10 150 25000 200 3 35 450 0 0",
    "intr 123",
  ].join("\n");

  it("counts user, nice, system, irq and softirq; not idle, iowait or steal", () => {
    assert.equal(cpuBusySeconds(stat), (1000 + 20 + 300 + 5 + 70) / 100);
  });

  it("reads the aggregate line, not a core's", () => {
    assert.equal(cpuBusySeconds(stat.split("\n").reverse().join("\n")), 13.95);
  });

  it("refuses text without the aggregate line, or with a field that is not a number", () => {
    assert.throws(() => cpuBusySeconds("cpu0 1 2 3 4 5 6 7\n"), /no aggregate 'cpu' line/);
    assert.throws(() => cpuBusySeconds("cpu  1 2 x 4 5 6 7\n"), /unreadable 'cpu' line/);
  });
});

describe("bench: one process's CPU from /proc/<pid>/stat", () => {
  it("reads the fields after the last parenthesis, whatever the command name holds", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice threads itreal starttime …
    const p = parseProcStat(
      4242,
      "4242 (tmux: srv (x) 1) S 17 4242 4242 0 -1 4194560 900 0 0 0 250 75 9 9 20 0 1 0 123456 1000 50",
    );
    assert.deepEqual(p, {
      pid: 4242,
      ppid: 17,
      comm: "tmux: srv (x) 1",
      start: 123456,
      ticks: 325,
    });
  });

  it("refuses a line without a command name or with a field that is not a number", () => {
    assert.throws(() => parseProcStat(1, "1 S 0"), /no command name/);
    assert.throws(() => parseProcStat(1, "1 (a) S x 1 1"), /field 4 is "x"/);
  });
});

describe("bench: what each process's CPU is counted as", () => {
  const cases: Array<[string, string, string[], string]> = [
    [
      "node",
      "node /app/node_modules/.bin/tsc -p tsconfig.build.json",
      ["sh", "buildkit-runc", "buildkitd"],
      "build steps (in BuildKit's containers)",
    ],
    [
      "qemu-aarch64-st",
      "/usr/bin/qemu-aarch64-static /bin/sh -c npm ci",
      ["runc", "buildkitd"],
      "build steps (in BuildKit's containers)",
    ],
    ["buildkit-runc", "buildkit-runc run", ["buildkitd"], "buildkitd"],
    ["buildkitd", "buildkitd --addr tcp://127.0.0.1:1235", ["systemd"], "buildkitd"],
    ["distribution-re", "distribution-registry serve config.yml", ["bash"], "registry"],
    ["pulumi", "pulumi up --stack bench", ["node"], "Pulumi CLI (engine)"],
    ["pulumi-language", "pulumi-language-nodejs", ["pulumi"], "Pulumi CLI (engine)"],
    [
      "pulumi-resource",
      "pulumi-resource-docker-build 127.0.0.1:1",
      ["pulumi"],
      "providers (docker-build, dynamic)",
    ],
    [
      "node",
      "node /w/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js 127.0.0.1:1",
      ["pulumi"],
      "providers (docker-build, dynamic)",
    ],
    [
      "node",
      "node /w/node_modules/@pulumi/pulumi/cmd/run/index.js --monitor 127.0.0.1:1",
      ["pulumi-language"],
      "program (index.ts)",
    ],
    [
      "node",
      "node -r sucrase/register/ts.js /w/evidence/cli.ts scan --request /tmp/r",
      ["node", "pulumi"],
      "evidence engine (node)",
    ],
    ["syft", "syft scan oci-dir:/tmp/l", ["node"], "syft"],
    ["trivy", "trivy image --image-src remote", ["node"], "trivy"],
    ["cosign", "cosign attest --yes", ["node"], "cosign"],
    ["docker-buildx", "docker-buildx build --push", ["node"], "docker buildx (client)"],
    ["node", "node /usr/bin/mocha test/e2e", ["bash"], "other"],
  ];
  for (const [comm, cmd, ancestors, want] of cases)
    it(`${cmd.split(" ").slice(0, 2).join(" ")} (under ${ancestors[0]}) → ${want}`, () => {
      assert.equal(componentOf({ pid: 50, comm, cmd }, ancestors, 10), want);
    });

  it("a process in a PID namespace of its own is a build step, whatever its parents", () => {
    const p = { pid: 60, comm: "npm ci", cmd: "npm ci       ", inContainer: true };
    assert.equal(componentOf(p, ["sh"], 10), "build steps (in BuildKit's containers)");
    assert.equal(componentOf({ ...p, inContainer: false }, ["sh"], 10), "other");
  });

  it("local.sh's stack preparation is named", () => {
    const cmd = "node -r ts-node/register/transpile-only scripts/prepare-stack.ts --project-dir /w";
    assert.equal(
      componentOf({ pid: 61, comm: "node", cmd }, ["bash"], 10),
      "stack preparation (local.sh)",
    );
  });

  it("the bench's own process is the measuring, whatever its command", () => {
    assert.equal(
      componentOf({ pid: 10, comm: "node", cmd: "node scripts/bench.ts" }, [], 10),
      "bench (measuring)",
    );
  });
});

describe("bench: sampling a process's CPU", () => {
  it("counts only what the process used inside the window, as the process itself counts it", () => {
    // This test's own process: it existed before the window, so what it had used before must not count.
    const sampler = new CpuSampler(20);
    sampler.start();
    const before = process.cpuUsage();
    // Busy until the process itself has used 0.4 s (however busy the machine is), at most 10 s.
    const t = Date.now();
    const spent = (): number => {
      const u = process.cpuUsage(before);
      return (u.user + u.system) / 1e6;
    };
    while (spent() < 0.4 && Date.now() - t < 10_000) Math.sqrt(t);
    const used = process.cpuUsage(before);
    const by = sampler.stop();
    const own = (used.user + used.system) / 1e6;
    const seen = by["bench (measuring)"] ?? 0;
    assert.ok(own >= 0.3, `the busy loop used ${own} s`);
    assert.ok(Math.abs(seen - own) <= 0.1, `sampled ${seen} s, the process counted ${own} s`);
  });
});

describe("bench: the CPU tables", () => {
  const runs: RunRecord[] = [
    record({
      scenario: "source",
      path: "factory",
      wallSeconds: 30,
      cpuSeconds: 48,
      cpuBy: { syft: 4.5, cosign: 5.2 },
    }),
    record({
      scenario: "source",
      path: "peer",
      wallSeconds: 25,
      cpuSeconds: 30,
      cpuBy: { syft: 15 },
    }),
    record({ scenario: "noop", path: "factory", wallSeconds: 5, cpuSeconds: 9 }),
    record({ scenario: "noop", path: "peer", wallSeconds: 24, cpuSeconds: 28 }),
  ];

  it("gives the wall floor on the machine's cores and the best ratio it allows, the no-op against the peer's warm source", () => {
    const rows = cpuTable(runs, judge(runs, ["source", "noop"]), 2).split("\n");
    // source: 48 CPU s on 2 cores is at least 24 s of wall, 0.96 of the peer's 25 s
    assert.equal(rows[2], "| source | 48.0 | 30.0 | 1.60 | 24.0 | 0.96 | ≤ 0.5 |");
    assert.equal(rows[3], "| noop | 9.0 | 28.0 | 0.32 | 4.5 | 0.18 | ≤ 0.3 |");
    assert.match(rows[0], /CPU ÷ 2 cores/);
  });

  it("is left out for runs recorded before the CPU was measured", () => {
    const old = runs.map(({ cpuSeconds: _c, cpuBy: _b, ...r }) => r);
    assert.equal(cpuTable(old, judge(old, ["source"]), 2), "");
    assert.equal(cpuByTable(old, ["source"]), "");
  });

  it("shows each median round's components, a zero where a path had none, and both totals", () => {
    const rows = cpuByTable(runs, ["source"]).split("\n");
    assert.equal(rows[0], "| CPU s | source factory | source peer |");
    assert.ok(rows.includes("| syft | 4.5 | 15.0 |"));
    assert.ok(rows.includes("| cosign | 5.2 | 0.0 |"));
    assert.ok(rows.includes("| sampled total | 9.7 | 15.0 |"));
    assert.ok(rows.includes("| machine total (exact) | 48.0 | 30.0 |"));
  });

  it("says whether a missed goal needs less work or more overlap", () => {
    const machine = { nproc: 2, memoryGiB: 1, cpuModel: "x", kernel: "k" };
    const [source] = judge(runs, ["source"]);
    assert.equal(
      notMet(source, { runs, machine }),
      "source: ratio 1.20 > 0.5; its work cannot go below 0.96 on 2 cores (48.0 CPU s): the goal needs less work, not more overlap",
    );
    // The same work on 8 cores: 6 s of wall at best, 0.24 of the peer's 25 s.
    assert.match(
      notMet(source, { runs, machine: { ...machine, nproc: 8 } }),
      /; its work allows 0\.24 on 8 cores: the goal needs more overlap$/,
    );
    const old = runs.map(({ cpuSeconds: _c, ...r }) => r);
    assert.equal(
      notMet(judge(old, ["source"])[0], { runs: old, machine }),
      "source: ratio 1.20 > 0.5",
    );
  });
});
