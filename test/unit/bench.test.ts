// The pure parts of `npm run bench` (scripts/bench/: model, timeline, judge, tables, svg, readme):
// statistics, the factory's phases from a Pulumi event log, the goals, the README blocks and the SVG chart.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EventLogWatcher, readEventLog } from "../../scripts/bench/eventLog";
import { judge, verdicts } from "../../scripts/bench/judge";
import { type RunRecord, medianRun, stats } from "../../scripts/bench/model";
import { type ProcessEntry, foreignOf } from "../../scripts/bench/monitor";
import { options, usage } from "../../scripts/bench/options";
import { replaceBlock } from "../../scripts/bench/readme";
import { benchSvg } from "../../scripts/bench/svg";
import { depsOnTarget } from "../../scripts/bench/emulation";
import { emulationTable, resultsTable } from "../../scripts/bench/tables";
import {
  type EngineEventLine,
  EVIDENCE_TYPE,
  SCANS_TYPE,
  IMAGE_TYPE,
  INDEX_TYPE,
  SIGNING_DETAIL,
  TAGS_TYPE,
  factoryTimeline,
  recordSigning,
} from "../../scripts/bench/timeline";
import { record } from "./benchFixtures";

const pre = (at: number, type: string, name: string, op = "create"): EngineEventLine => ({
  at,
  event: { resourcePreEvent: { metadata: { op, type, urn: `urn:pulumi:s::p::${type}::${name}` } } },
});
const out = (at: number, type: string, name: string, op = "create"): EngineEventLine => ({
  at,
  event: { resOutputsEvent: { metadata: { op, type, urn: `urn:pulumi:s::p::${type}::${name}` } } },
});

describe("bench: statistics", () => {
  it("min, median (odd and even counts) and max", () => {
    assert.deepEqual(stats([3, 1, 2]), { min: 1, median: 2, max: 3, n: 3 });
    assert.deepEqual(stats([4, 1, 3, 2]), { min: 1, median: 2.5, max: 4, n: 4 });
  });

  it("shows the run whose wall time is the median", () => {
    const runs = [
      record({ wallSeconds: 9, round: 1 }),
      record({ wallSeconds: 30, round: 2 }),
      record({ wallSeconds: 12, round: 3 }),
    ];
    assert.equal(medianRun(runs)?.round, 3);
  });
});

describe("bench: the factory's phases from the event log", () => {
  const lines: EngineEventLine[] = [
    pre(1_000, "pulumi:pulumi:Stack", "stack"),
    pre(1_200, "pulumi:providers:docker-build", "default"),
    pre(4_000, "image-factory:image:MultiPlatformImage", "image"),
    pre(4_100, IMAGE_TYPE, "image-linux-amd64", "update"),
    pre(4_100, IMAGE_TYPE, "image-coverage", "update"),
    out(9_000, IMAGE_TYPE, "image-linux-amd64", "update"),
    // The scans need only the platform images: they overlap the coverage image's build.
    pre(9_100, SCANS_TYPE, "evidence-scans", "update"),
    out(11_500, SCANS_TYPE, "evidence-scans", "update"),
    out(12_000, IMAGE_TYPE, "image-coverage", "update"),
    pre(12_100, EVIDENCE_TYPE, "evidence-evidence", "update"),
    out(17_000, EVIDENCE_TYPE, "evidence-evidence", "update"),
    pre(17_100, INDEX_TYPE, "publish-index", "update"),
    out(18_000, INDEX_TYPE, "publish-index", "update"),
    pre(18_000, TAGS_TYPE, "publish-tags", "update"),
    out(19_000, TAGS_TYPE, "publish-tags", "update"),
  ];

  it("splits the wall time into segments that add up to it", () => {
    const t = factoryTimeline(lines, 0, 20_000);
    assert.deepEqual(t.segments, { start: 4, build: 8, evidence: 5, publish: 2, finish: 1 });
    assert.equal(
      Object.values(t.segments).reduce((a, b) => a + b, 0),
      20,
    );
    assert.equal(t.detail["Image image-coverage"], 7.9);
    assert.equal(t.detail["Scans evidence-scans"], 2.4);
    assert.equal(t.builds, 2);
    assert.equal(t.scans, 1);
  });

  it("counts no build and no scan when every resource is the same", () => {
    const same = lines.map((l) => {
      const m = l.event.resourcePreEvent?.metadata ?? l.event.resOutputsEvent?.metadata;
      if (m) m.op = "same";
      return l;
    });
    const t = factoryTimeline(same, 0, 20_000);
    assert.equal(t.builds, 0);
    assert.equal(t.scans, 0);
  });
});

describe("bench: what counts as other people's work", () => {
  // pid → [ppid, command line]: the bench (100, started by npm 90), its buildkitd (200) running an
  // emulated `npm ci` two levels down, another engineer's buildkitd (300) doing the same, and an
  // unrelated mocha run.
  const table = new Map<number, ProcessEntry>(
    (
      [
        [90, 1, "npm run bench"],
        [100, 90, "node scripts/bench.ts"],
        [110, 100, "pulumi up --yes"],
        [200, 1, "buildkitd --addr tcp://127.0.0.1:1235"],
        [210, 200, "runc run"],
        [220, 210, "/usr/bin/qemu-aarch64-binfmt-P /bin/sh sh -c npm ci --omit=dev"],
        [300, 1, "buildkitd --addr tcp://127.0.0.1:1234"],
        [310, 300, "runc run"],
        [320, 310, "/usr/bin/qemu-arm-binfmt-P /bin/sh sh -c npm ci --omit=dev"],
        [400, 1, "node /usr/bin/mocha test/e2e"],
      ] as Array<[number, number, string]>
    ).map(([pid, ppid, cmd]) => [pid, { ppid, cmd }]),
  );

  it("counts the other buildkitd's work and the unrelated run, not the bench's own", () => {
    assert.deepEqual(foreignOf(table, 100, [200]).sort(), [
      "node mocha e2e",
      "qemu-arm-binfmt-P sh sh",
    ]);
  });

  it("counts the bench's own daemon's work as foreign when the daemon is not named", () => {
    assert.deepEqual(foreignOf(table, 100, []).sort(), [
      "node mocha e2e",
      "qemu-aarch64-binfmt-P sh sh",
      "qemu-arm-binfmt-P sh sh",
    ]);
  });
});

describe("bench: goals", () => {
  const runs: RunRecord[] = [
    record({ scenario: "source", path: "factory", wallSeconds: 10 }),
    record({ scenario: "source", path: "peer", wallSeconds: 40 }),
    record({ scenario: "noop", path: "factory", wallSeconds: 6 }),
    record({ scenario: "noop", path: "peer", wallSeconds: 35 }),
    record({ scenario: "cold", path: "factory", wallSeconds: 100 }),
    record({ scenario: "cold", path: "peer", wallSeconds: 80 }),
  ];

  it("judges the no-op against the peer's warm source run and the others against their own", () => {
    const [source, noop, cold] = judge(runs, ["source", "noop", "cold"]);
    assert.equal(source.ratio, 0.25);
    assert.equal(source.met, true);
    assert.equal(noop.ratio, 6 / 40);
    assert.equal(noop.met, true);
    assert.equal(cold.ratio, 1.25);
    assert.equal(cold.met, false);
  });

  it("fails a no-op that built or scanned, whatever its time", () => {
    const [noop] = judge(
      [
        ...runs.filter((r) => r.scenario !== "noop"),
        record({ scenario: "noop", path: "factory", wallSeconds: 5, builds: 1 }),
      ],
      ["noop"],
    );
    assert.equal(noop.met, false);
    assert.match(noop.problems.join(), /1 image build/);
  });

  it("renders the table and a chart with one group per scenario", () => {
    const results = judge(runs, ["cold", "source", "noop"]);
    assert.match(
      resultsTable(results),
      /\| warm, one line of app\/src changed \| 10\.0 \/ \*\*10\.0\*\* \/ 10\.0 \|/,
    );
    const svg = benchSvg(runs, results, "caption & <test>");
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal((svg.match(/font-weight="bold">(cold|source|noop)</g) ?? []).length, 3);
    assert.ok(svg.includes("caption &amp; &lt;test&gt;"));
  });
});

describe("bench: emulated vs native", () => {
  const dockerfile = fs.readFileSync(path.join(__dirname, "..", "..", "app", "Dockerfile"), "utf8");

  it("moves app/Dockerfile's deps stage onto the target platform and changes nothing else", () => {
    const before = dockerfile.split("\n");
    const after = depsOnTarget(dockerfile).split("\n");
    assert.equal(after.length, before.length);
    const changed = before.flatMap((line, i) => (line === after[i] ? [] : [[line, after[i]]]));
    assert.deepEqual(changed, [
      ["FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS deps", "FROM ${BASE_IMAGE} AS deps"],
    ]);
  });

  it("refuses a Dockerfile whose deps stage it cannot find exactly once", () => {
    const line = "FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS deps";
    for (const [text, times] of [
      [dockerfile.replace(line, "FROM ${BASE_IMAGE} AS deps"), 0],
      [`${dockerfile}\n${line}\n`, 2],
    ] as const) {
      assert.throws(
        () => depsOnTarget(text),
        new RegExp(
          `must have the line "FROM --platform=\\$BUILDPLATFORM .* once, found it ${times} times`,
        ),
      );
    }
  });

  it("holds each row against amd64's row of the same kind; rows recorded before the cross-install are the target's", () => {
    const table = emulationTable([
      { platform: "linux/amd64", depsOn: "cross", walls: [10, 12, 14], npmCi: [1, 1, 1] },
      { platform: "linux/arm64", depsOn: "cross", walls: [13], npmCi: [1.5] },
      { platform: "linux/amd64", walls: [8], npmCi: [0.8] },
      { platform: "linux/arm64", depsOn: "target", walls: [16], npmCi: [6] },
    ]).split("\n");
    assert.deepEqual(table.slice(2), [
      "| linux/amd64 | amd64, for the target (app/Dockerfile) | 12.0 | 1.0 | 1.00 | 1.00 |",
      "| linux/arm64 | amd64, for the target (app/Dockerfile) | 13.0 | 1.5 | 1.08 | 1.50 |",
      "| linux/amd64 | the target (native) | 8.0 | 0.8 | 1.00 | 1.00 |",
      "| linux/arm64 | the target, under QEMU | 16.0 | 6.0 | 2.00 | 7.50 |",
    ]);
  });
});

describe("bench: README blocks", () => {
  it("replaces only what is between the markers", () => {
    const text = "a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n";
    assert.equal(
      replaceBlock(text, "bench", "new"),
      "a\n<!-- bench:start -->\nnew\n<!-- bench:end -->\nb\n",
    );
    assert.throws(() => replaceBlock("no markers", "bench", "x"), /no <!-- bench:start -->/);
  });
});

describe("bench: flags", () => {
  it("--dry is one round of cold and no-op on linux/amd64, without emulation or README", () => {
    const o = options(["--dry"]);
    assert.ok(o !== "help");
    assert.deepEqual(
      {
        repeat: o.repeat,
        scenarios: o.scenarios,
        platforms: o.platforms,
        emulation: o.emulation,
        readme: o.readme,
      },
      {
        repeat: 1,
        scenarios: ["cold", "noop"],
        platforms: ["linux/amd64"],
        emulation: false,
        readme: false,
      },
    );
  });

  it("refuses lists with an unknown item or without cold first, and the shared daemon's port", () => {
    assert.throws(() => options(["--platforms", "linux/s390x"]), /'linux\/s390x' is not one of/);
    assert.throws(() => options(["--paths", "factory,ci"]), /'ci' is not factory or peer/);
    assert.throws(() => options(["--scenarios", "source,cold"]), /must start with cold/);
    assert.throws(() => options(["--port", "1234"]), /other than 1234/);
    assert.throws(() => options(["--bogus"]), /Unknown option '--bogus'/);
  });

  it("--help names every flag parseArgs accepts", () => {
    assert.equal(options(["--help", "--repeat", "0"]), "help");
    const lines = [...usage().matchAll(/^ {2}--([a-z-]+)( [A-Z]+)?/gm)];
    assert.ok(lines.length >= 12, usage());
    for (const [, flag, value] of lines) {
      // A flag parseArgs does not know fails as unknown; a value it does not like, otherwise.
      const args = value === undefined ? [`--${flag}`] : [`--${flag}`, "1"];
      try {
        options(args);
      } catch (e) {
        assert.doesNotMatch(String(e), /Unknown option/, flag);
      }
    }
  });
});

describe("bench: the JSON's goals and the signing time", () => {
  it("keeps the verdict of each result, not its statistics", () => {
    const [v] = verdicts(
      judge([record({ path: "factory" }), record({ path: "peer" })], ["source"]),
    );
    assert.deepEqual(v, { scenario: "source", goal: 0.5, ratio: 1, met: false, problems: [] });
  });

  it("reads the signing time only from a Tags resource that ran in this update", () => {
    const tags = (op: string): EngineEventLine => ({
      at: 0,
      event: {
        resOutputsEvent: {
          metadata: { op, type: TAGS_TYPE, new: { outputs: { signingReport: { seconds: 4.5 } } } },
        },
      } as EngineEventLine["event"],
    });
    const detail: Record<string, number> = { [SIGNING_DETAIL]: 9 };
    recordSigning(detail, [tags("update")]);
    assert.equal(detail[SIGNING_DETAIL], 4.5);
    recordSigning(detail, [tags("same")]);
    assert.ok(!(SIGNING_DETAIL in detail));
  });
});

describe("bench: event log files", () => {
  it("follows a growing file line by line and reads a finished one whole", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-bench-events-"));
    try {
      const file = path.join(dir, "events.jsonl");
      const watcher = new EventLogWatcher(file);
      watcher.poll();
      assert.equal(watcher.lines.length, 0);
      fs.writeFileSync(file, '{"sequence":1}\n{"seque');
      watcher.poll();
      assert.deepEqual(
        watcher.lines.map((l) => l.event.sequence),
        [1],
      );
      fs.appendFileSync(file, 'nce":2}\n\n');
      watcher.stop();
      assert.deepEqual(
        watcher.lines.map((l) => l.event.sequence),
        [1, 2],
      );
      assert.ok(watcher.lines.every((l) => l.at > 0));
      assert.deepEqual(readEventLog(file), [
        { at: 0, event: { sequence: 1 } },
        { at: 0, event: { sequence: 2 } },
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
