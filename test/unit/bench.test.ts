// The pure parts of `npm run bench` (scripts/bench/report.ts): statistics, the factory's phases from
// a Pulumi event log, the goals, the README blocks and the SVG chart.
import * as assert from "node:assert/strict";
import {
  type EngineEventLine,
  type RunRecord,
  EVIDENCE_TYPE,
  IMAGE_TYPE,
  INDEX_TYPE,
  TAGS_TYPE,
  benchSvg,
  factoryTimeline,
  judge,
  medianRun,
  replaceBlock,
  resultsTable,
  stats,
} from "../../scripts/bench/report";

const pre = (at: number, type: string, name: string, op = "create"): EngineEventLine => ({
  at,
  event: { resourcePreEvent: { metadata: { op, type, urn: `urn:pulumi:s::p::${type}::${name}` } } },
});
const out = (at: number, type: string, name: string, op = "create"): EngineEventLine => ({
  at,
  event: { resOutputsEvent: { metadata: { op, type, urn: `urn:pulumi:s::p::${type}::${name}` } } },
});

function record(over: Partial<RunRecord>): RunRecord {
  return {
    round: 1,
    scenario: "source",
    path: "factory",
    wallSeconds: 10,
    segments: {},
    detail: {},
    builds: 0,
    scans: 0,
    startedAt: "",
    ...over,
  };
}

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
