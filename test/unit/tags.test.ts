import * as fc from "fast-check";
import { strict as assert } from "node:assert";
import { computeTags, OCI_TAG, parseRef, parseSemver, sanitizeTag } from "../../components/tags";

const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const S7 = "sha-1a2b3c4";
const S40 = `sha-${SHA}`;

interface Case {
  ref: string;
  want: string[];
  prerelease?: boolean;
  version?: string;
  defaultBranch?: string;
}

// Each row: a ref and the exact, ordered tag list it must produce.
const cases: Case[] = [
  // branches
  { ref: "refs/heads/main", want: ["main", "edge", S7, S40], version: "main-1a2b3c4" },
  { ref: "refs/heads/develop", want: ["develop", S7, S40] },
  { ref: "refs/heads/develop", want: ["develop", "edge", S7, S40], defaultBranch: "develop" },
  { ref: "refs/heads/main", want: ["main", S7, S40], defaultBranch: "trunk" },
  { ref: "refs/heads/my/feature#12", want: ["my-feature-12", S7, S40] },
  { ref: "refs/heads/feature/JIRA-123_Fix", want: ["feature-JIRA-123_Fix", S7, S40] },
  { ref: "refs/heads/release/1.2", want: ["release-1.2", S7, S40] },
  { ref: "refs/heads/a//b", want: ["a-b", S7, S40] },
  { ref: "refs/heads/-leading", want: ["leading", S7, S40] },
  { ref: "refs/heads/.hidden", want: ["hidden", S7, S40] },
  { ref: "refs/heads/_under", want: ["_under", S7, S40] },
  { ref: "refs/heads/trailing-", want: ["trailing", S7, S40] },
  { ref: "refs/heads/ü-ñ-branch", want: ["branch", S7, S40] },
  { ref: "refs/heads/émoji🚀fix", want: ["moji-fix", S7, S40] },
  { ref: "refs/heads/@@@", want: [S7, S40], version: "branch-1a2b3c4" },
  { ref: "refs/heads/user@host:path", want: ["user-host-path", S7, S40] },
  { ref: "refs/heads/a b\tc", want: ["a-b-c", S7, S40] },
  {
    ref: "refs/heads/dependabot/npm_and_yarn/app/pino-9.5.0",
    want: ["dependabot-npm_and_yarn-app-pino-9.5.0", S7, S40],
  },
  { ref: `refs/heads/${"x".repeat(200)}`, want: ["x".repeat(128), S7, S40] },
  { ref: `refs/heads/${"a".repeat(127)}/b`, want: ["a".repeat(127), S7, S40] },
  { ref: "refs/heads/sha-1a2b3c4", want: [S7, S40] },
  { ref: "refs/heads/UPPER", want: ["UPPER", S7, S40] },
  // pull requests
  { ref: "refs/pull/12/merge", want: ["pr-12", S7, S40], version: "pr-12-1a2b3c4" },
  { ref: "refs/pull/1/head", want: ["pr-1", S7, S40] },
  { ref: "refs/pull/99999/merge", want: ["pr-99999", S7, S40] },
  // stable semver releases
  {
    ref: "refs/tags/v1.2.3",
    want: ["1.2.3", "1.2", "1", "latest", S7, S40],
    version: "1.2.3",
    prerelease: false,
  },
  { ref: "refs/tags/1.2.3", want: ["1.2.3", "1.2", "1", "latest", S7, S40] },
  { ref: "refs/tags/v10.20.30", want: ["10.20.30", "10.20", "10", "latest", S7, S40] },
  { ref: "refs/tags/v2.0.0", want: ["2.0.0", "2.0", "2", "latest", S7, S40] },
  { ref: "refs/tags/v1.0.0+build.5", want: ["1.0.0_build.5", "1.0", "1", "latest", S7, S40] },
  // prereleases: only the exact version
  {
    ref: "refs/tags/v1.2.3-rc.1",
    want: ["1.2.3-rc.1", S7, S40],
    prerelease: true,
    version: "1.2.3-rc.1",
  },
  { ref: "refs/tags/v2.0.0-alpha", want: ["2.0.0-alpha", S7, S40], prerelease: true },
  {
    ref: "refs/tags/v2.0.0-beta.2+exp.sha.5114f85",
    want: ["2.0.0-beta.2_exp.sha.5114f85", S7, S40],
    prerelease: true,
  },
  { ref: "refs/tags/1.0.0-0.3.7", want: ["1.0.0-0.3.7", S7, S40], prerelease: true },
  { ref: "refs/tags/v1.0.0-x-y-z.--", want: ["1.0.0-x-y-z", S7, S40], prerelease: true },
  // 0.x is initial development: no floating tags
  { ref: "refs/tags/v0.4.1", want: ["0.4.1", S7, S40], prerelease: true },
  { ref: "refs/tags/v0.0.1", want: ["0.0.1", S7, S40], prerelease: true },
  { ref: "refs/tags/v0.9.0-rc.1", want: ["0.9.0-rc.1", S7, S40], prerelease: true },
  // non-semver tags are plain ref tags
  { ref: "refs/tags/nightly-2026-11-23", want: ["nightly-2026-11-23", S7, S40], prerelease: false },
  { ref: "refs/tags/v1.2", want: ["v1.2", S7, S40] },
  { ref: "refs/tags/v01.2.3", want: ["v01.2.3", S7, S40] },
  { ref: "refs/tags/release/2026.11", want: ["release-2026.11", S7, S40] },
  { ref: "refs/tags/latest", want: ["latest", S7, S40] },
  { ref: "refs/tags/%%%", want: [S7, S40], version: "1a2b3c4" },
];

describe("computeTags (metadata-action semantics)", () => {
  for (const c of cases) {
    const label = `${c.ref.slice(0, 60)}${c.defaultBranch ? ` (default ${c.defaultBranch})` : ""}`;
    it(`${label} → ${c.want.slice(0, 4).join(", ")}`, () => {
      const plan = computeTags({ ref: c.ref, sha: SHA }, { defaultBranch: c.defaultBranch });
      assert.deepEqual(plan.tags, c.want);
      for (const t of plan.tags) assert.match(t, OCI_TAG);
      if (c.prerelease !== undefined) assert.equal(plan.prerelease, c.prerelease);
      if (c.version !== undefined) assert.equal(plan.version, c.version);
    });
  }

  it("has at least 40 table cases", () => {
    assert.ok(cases.length >= 40, `only ${cases.length} cases`);
  });

  it("never emits latest for a prerelease or a 0.x version", () => {
    for (const ref of ["refs/tags/v3.0.0-rc.1", "refs/tags/v0.1.0", "refs/tags/0.99.99"]) {
      assert.ok(!computeTags({ ref, sha: SHA }).tags.includes("latest"), ref);
    }
  });

  it("keeps every tag valid whatever the branch name (property)", () => {
    // Any text git might carry after refs/heads/, hostile characters and emoji included.
    const hostile = fc.constantFrom(..."aZ09_.-/#@:+~^ ?*[]\\é🚀".split(""));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ minLength: 1, maxLength: 300, unit: "grapheme" }),
          fc.string({ minLength: 1, maxLength: 300, unit: hostile }),
        ),
        (name) => {
          const plan = computeTags({ ref: `refs/heads/${name}`, sha: SHA });
          for (const t of plan.tags)
            assert.match(
              t,
              /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
              `branch ${JSON.stringify(name)} gave ${t}`,
            );
          assert.ok(plan.tags.includes(`sha-${SHA}`));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("tag inputs are refused clearly", () => {
  const badRefs = [
    "main",
    "refs/remotes/origin/main",
    "refs/pull/abc/merge",
    "refs/pull/0/merge",
    "",
    "refs/heads/",
  ];
  for (const ref of badRefs) {
    it(`refuses ref ${JSON.stringify(ref)}`, () => {
      assert.throws(
        () => computeTags({ ref, sha: SHA }),
        (e: Error) => {
          assert.match(e.message, /gitRef/);
          assert.ok(e.message.includes(`"${ref}"`), e.message);
          return true;
        },
      );
    });
  }
  const badShas = ["1a2b3c4", SHA.toUpperCase(), `${SHA}0`, "z".repeat(40), ""];
  for (const sha of badShas) {
    it(`refuses sha ${JSON.stringify(sha.slice(0, 12))}`, () => {
      assert.throws(
        () => computeTags({ ref: "refs/heads/main", sha }),
        (e: Error) => {
          assert.match(e.message, /gitSha/);
          assert.ok(e.message.includes(`"${sha}"`));
          return true;
        },
      );
    });
  }
});

describe("tag helpers", () => {
  it("parses refs", () => {
    assert.deepEqual(parseRef("refs/heads/a/b"), { kind: "branch", name: "a/b" });
    assert.deepEqual(parseRef("refs/tags/v1"), { kind: "tag", name: "v1" });
    assert.deepEqual(parseRef("refs/pull/7/merge"), { kind: "pr", name: "7" });
  });
  it("parses semver strictly", () => {
    assert.deepEqual(parseSemver("v1.2.3-rc.1+b"), {
      major: 1,
      minor: 2,
      patch: 3,
      prerelease: "rc.1",
      build: "b",
    });
    assert.equal(parseSemver("1.2"), undefined);
    assert.equal(parseSemver("01.2.3"), undefined);
    assert.equal(parseSemver("1.2.3-01"), undefined);
  });
  it("sanitises to the grammar or to nothing", () => {
    assert.equal(sanitizeTag("my/feature#12"), "my-feature-12");
    assert.equal(sanitizeTag("..."), "");
    assert.equal(sanitizeTag("a--b"), "a-b");
  });
});
