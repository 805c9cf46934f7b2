// The pure parts of `npm run review` (scripts/review.ts): the review stack's config, the BuildKit
// failure parser and the compact preview, on real `pulumi up` / `pulumi preview --diff` output
// recorded from this machine (test/fixtures/review-command/), and the `publish` config key.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, decodeRawConfig, validateConfig } from "../../components/config";
import {
  compactPreview,
  contextOnlyGates,
  jsonPathFor,
  manifestSize,
  parseBuildFailures,
  reviewImageName,
  reviewStackConfig,
  stripAnsi,
} from "../../scripts/review/pure";

const FIXTURES = path.resolve(__dirname, "../fixtures/review-command");
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), "utf8");
const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const ROOT = path.resolve(__dirname, "../..");

/** validateConfig's context for `stack`: no environment, no local repository, the token secret. */
function context(stack: string): Parameters<typeof validateConfig>[1] {
  return {
    stack,
    env: {},
    localGit: () => undefined,
    secretKeys: new Set(["registryToken"]),
    cwd: ROOT,
  };
}

describe("review command: the review stack's config", () => {
  const local = {
    "image-factory:imageName": "127.0.0.1:5443/image-factory/shop-api",
    "image-factory:registryUsername": "factory",
    "image-factory:registryToken": { secure: "v1:abc" },
    "image-factory:buildHosts": { enabled: false, localBuilder: "image-factory-local" },
    "image-factory:cache": {
      type: "registry",
      mode: "max",
      ref: "127.0.0.1:5443/image-factory/shop-api-cache",
    },
    "image-factory:gitRef": "refs/heads/feature",
    "image-factory:gitSha": "f".repeat(40),
    "image-factory:github": {},
  };

  it("points the target's settings at the quarantine repository, publishes nothing, builds what the merge builds, drops secrets", () => {
    assert.deepEqual(reviewStackConfig(local, { sha: SHA, ref: "refs/heads/main" }), {
      "image-factory:imageName": "127.0.0.1:5443/image-factory/shop-api-review",
      "image-factory:registryUsername": "factory",
      "image-factory:buildHosts": { enabled: false, localBuilder: "image-factory-local" },
      "image-factory:cache": {
        type: "registry",
        mode: "max",
        ref: "127.0.0.1:5443/image-factory/shop-api-cache",
      },
      "image-factory:gitRef": "refs/heads/main",
      "image-factory:gitSha": SHA,
      "image-factory:github": {},
      "image-factory:publish": false,
      "image-factory:push": true,
    });
  });

  it("pins a default registry cache to the target's (main's cache is read, not a new empty one)", () => {
    const dev = {
      "aws:region": "eu-west-1",
      "image-factory:imageName": "ghcr.io/acme/shop-api",
      "image-factory:cache": { type: "registry", mode: "max" },
    };
    const c = reviewStackConfig(dev, { sha: SHA, ref: "refs/pull/42/merge" });
    assert.deepEqual(c["image-factory:cache"], {
      type: "registry",
      mode: "max",
      ref: "ghcr.io/acme/shop-api-buildcache",
    });
    assert.equal(c["aws:region"], "eu-west-1");
    assert.equal(c["image-factory:gitRef"], "refs/pull/42/merge");
    assert.equal(reviewImageName("ghcr.io/acme/shop-api"), "ghcr.io/acme/shop-api-review");
  });

  it("with a quarantine-only credential (CI) the registry cache lives in quarantine and the credential's account is the username", () => {
    const dev = {
      "image-factory:imageName": "ghcr.io/acme/shop-api",
      "image-factory:registryUsername": "acme-ci",
      "image-factory:cache": { type: "registry", mode: "max", ref: "ghcr.io/acme/shared-cache" },
    };
    const c = reviewStackConfig(dev, {
      sha: SHA,
      ref: "refs/pull/42/merge",
      registryUsername: "acme-review-bot",
      cacheRef: reviewImageName("ghcr.io/acme/shop-api"),
    });
    assert.deepEqual(c["image-factory:cache"], {
      type: "registry",
      mode: "max",
      ref: "ghcr.io/acme/shop-api-review",
    });
    assert.equal(c["image-factory:registryUsername"], "acme-review-bot");
    // An s3 or gha cache has no repository: cacheRef leaves it alone.
    const s3 = reviewStackConfig(
      { "image-factory:imageName": "ghcr.io/acme/shop-api", "image-factory:cache": { type: "s3" } },
      { sha: SHA, ref: "refs/pull/42/merge", cacheRef: "ghcr.io/acme/shop-api-review" },
    );
    assert.deepEqual(s3["image-factory:cache"], { type: "s3" });
  });

  it("an s3 cache without a bucket reads the target's bucket instead of creating one", () => {
    const c = reviewStackConfig(
      { "image-factory:imageName": "ghcr.io/acme/shop-api", "image-factory:cache": { type: "s3" } },
      { sha: SHA, ref: "refs/heads/main", cacheBucket: "cache-bucket-123" },
    );
    assert.deepEqual(c["image-factory:cache"], { type: "s3", bucket: "cache-bucket-123" });
  });

  it("the result passes the program's own validation", () => {
    const c = reviewStackConfig(local, { sha: SHA, ref: "refs/heads/main" });
    const engine: Record<string, string> = { "image-factory:registryToken": "token" };
    for (const [k, v] of Object.entries(c))
      engine[k] = typeof v === "string" ? v : JSON.stringify(v);
    const cfg = validateConfig(decodeRawConfig(engine), context("local"));
    assert.equal(cfg.publish, false);
    assert.equal(cfg.imageName, "127.0.0.1:5443/image-factory/shop-api-review");
    assert.equal(cfg.git.ref, "refs/heads/main");
  });
});

describe("config: image-factory:publish", () => {
  const ctx = context("dev");
  const base = {
    imageName: "ghcr.io/acme/shop-api",
    registryUsername: "ci",
    registryToken: "t",
    gitRef: "refs/heads/main",
    gitSha: SHA,
  };
  const problems = (raw: Record<string, unknown>): string[] => {
    try {
      validateConfig(raw, ctx);
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.problems;
    }
  };

  it("defaults to true and decodes false from the engine's text", () => {
    assert.equal(validateConfig(base, ctx).publish, true);
    assert.equal(
      validateConfig({ ...base, ...decodeRawConfig({ "image-factory:publish": "false" }) }, ctx)
        .publish,
      false,
    );
  });

  it("refuses a non-boolean, a promotion stack and push false, naming the key and the value", () => {
    assert.deepEqual(problems({ ...base, publish: "no" }), [
      'image-factory:publish must be true or false, got "no"',
    ]);
    assert.deepEqual(
      problems({ ...base, publish: false, promoteFrom: "dev" }).filter((p) =>
        p.includes("publish"),
      ),
      [
        'image-factory:publish false builds for review only; a promotion stack builds nothing (promoteFrom "dev")',
      ],
    );
    assert.deepEqual(problems({ ...base, publish: false, push: false }), [
      "image-factory:publish false needs push true: a review build pushes its per-platform images to the quarantine repository",
    ]);
    assert.throws(
      () => decodeRawConfig({ "image-factory:publish": "nope" }),
      /image-factory:publish must be valid true\/false config, got "nope"/,
    );
  });
});

describe("review command: where a build failed (real pulumi up output)", () => {
  it("names the failing resource, the Dockerfile stage and step, and keeps that step's output", () => {
    const failures = parseBuildFailures(fixture("up-armv7-failure.txt"));
    assert.deepEqual(Object.keys(failures), ["image-linux-arm-v7"]);
    const f = failures["image-linux-arm-v7"];
    assert.equal(f.stage, "deps");
    assert.equal(
      f.step,
      '4/5 RUN [ "$(uname -m)" != "armv7l" ] || (echo "armv7 is not supported by this step" && exit 1)',
    );
    assert.equal(
      f.tail,
      [
        '#15 [deps 4/5] RUN [ "$(uname -m)" != "armv7l" ] || (echo "armv7 is not supported by this step" && exit 1)',
        "#15 0.099 armv7 is not supported by this step",
        '#15 ERROR: process "/bin/sh -c [ \\"$(uname -m)\\" != \\"armv7l\\" ] || (echo \\"armv7 is not supported by this step\\" && exit 1)" did not complete successfully: exit code: 1',
        'error: failed to solve: process "/bin/sh -c [ \\"$(uname -m)\\" != \\"armv7l\\" ] || (echo \\"armv7 is not supported by this step\\" && exit 1)" did not complete successfully: exit code: 1',
      ].join("\n"),
    );
  });

  it("reads an update of a reused review stack too (status lines carry `[diff: …];`)", () => {
    const failures = parseBuildFailures(fixture("up-armv7-update-failure.txt"));
    assert.deepEqual(Object.keys(failures), ["image-linux-arm-v7"]);
    assert.equal(failures["image-linux-arm-v7"].stage, "deps");
    assert.equal(
      failures["image-linux-arm-v7"].step,
      '3/5 RUN [ "$(uname -m)" != "armv7l" ] || (echo "armv7 is not supported by this step" && exit 1)',
    );
    assert.match(
      failures["image-linux-arm-v7"].tail,
      /^#13 \[deps 3\/5\] RUN .*\n#13 \d+\.\d+ armv7 is not supported by this step\n/,
    );
  });

  it("finds the step when pulumi's display dropped its ERROR line: the started step that never finished and whose command the error names", () => {
    const log = fixture("up-armv7-error-line-dropped.txt");
    assert.ok(
      !/image-linux-arm-v7 creating \(0s\) #12 ERROR/.test(log),
      "the fixture lost the line",
    );
    const f = parseBuildFailures(log)["image-linux-arm-v7"];
    assert.equal(f.stage, "deps");
    assert.equal(
      f.step,
      '3/5 RUN [ "$(uname -m)" != "armv7l" ] || (echo "armv7 is not supported by this step" && exit 1)',
    );
    assert.match(f.tail, /^#12 0\.\d+ armv7 is not supported by this step$/m);
    assert.match(f.tail, /did not complete successfully: exit code: 1$/);
  });

  it("a missing registry cache (ERROR on the cache import) is not a failure", () => {
    const out = [
      " +  docker-build:index:Image image-linux-amd64 creating (0s) #9 importing cache manifest from 127.0.0.1:5443/x-cache:review-linux-amd64",
      " +  docker-build:index:Image image-linux-amd64 creating (0s) #9 ERROR: failed to configure registry cache importer: not found",
      " +  docker-build:index:Image image-linux-amd64 created (3s) #21 DONE 1.8s",
    ].join("\n");
    assert.deepEqual(parseBuildFailures(out), {});
  });

  it("a failure without a step (a COPY of a missing file has one; a frontend error has none) keeps the engine's message", () => {
    const out = [
      " +  docker-build:index:Image image-linux-amd64 creating (0s) #1 [internal] load build definition from Dockerfile",
      " +  docker-build:index:Image image-linux-amd64 **creating failed** error: failed to solve: dockerfile parse error on line 3: unknown instruction: FORM",
      "Diagnostics:",
      "  docker-build:index:Image (image-linux-amd64):",
      "    error: failed to solve: dockerfile parse error on line 3: unknown instruction: FORM",
      "",
      "Resources:",
    ].join("\n");
    assert.deepEqual(parseBuildFailures(out), {
      "image-linux-amd64": {
        stage: "unknown",
        step: "failed to solve: dockerfile parse error on line 3: unknown instruction: FORM",
        tail: "error: failed to solve: dockerfile parse error on line 3: unknown instruction: FORM",
      },
    });
  });

  it("strips terminal colours", () => {
    assert.equal(stripAnsi("\u001b[36m<ref *1>\u001b[39m Error"), "<ref *1> Error");
  });
});

describe("review command: the compact preview (real pulumi preview --diff output)", () => {
  const compact = compactPreview(fixture("preview-diff.txt"));

  it("keeps what changes, by type and name, and drops URNs, ids, providers, unchanged properties and log lines", () => {
    const lines = compact.split("\n");
    assert.equal(lines[0], "Previewing update (rvdev):");
    assert.ok(
      lines.includes("    ~ docker-build:index:Image image-linux-arm-v7 (update)"),
      compact,
    );
    assert.ok(
      lines.includes(
        '      - contextHash: "0f2f71d9be7f77682bb29b46484a6574723a3756adebb15ce3b55a15294bf902"',
      ),
      compact,
    );
    assert.ok(
      lines.includes("    ~ pulumi-nodejs:dynamic/publication:Tags publish-tags (update)"),
      compact,
    );
    assert.ok(
      !/urn:pulumi|\[id=|\[provider=|\[image-factory\]|pulumi:pulumi:Stack|registryToken|engine {10}:/.test(
        compact,
      ),
      compact,
    );
    assert.deepEqual(lines.slice(-3), ["Resources:", "    ~ 7 to update", "    5 unchanged"]);
  });

  it("folds long nested values and keeps short ones", () => {
    assert.ok(compact.includes("      - gateResults     : { … 240 lines … }"), compact);
    assert.ok(
      compact.includes(
        '          - linux/amd64 : "sha256:803830db587bd24a7f7c0af5db1493b615aa892f33a23d0728199f844337d75c"',
      ),
      compact,
    );
    assert.ok(
      compact.length < fixture("preview-diff.txt").length / 3,
      `${compact.length} characters`,
    );
  });
});

describe("review command: gates judged without a build", () => {
  it("marks the checks that need the build not-run with the reason, and lets the checks that ran decide", () => {
    const summary = {
      passed: false,
      checks: [
        { name: "coverage", status: "failed" as const },
        { name: "branchCoverage", status: "not-run" as const },
        { name: "secrets", status: "passed" as const },
        { name: "dockerfileLint", status: "passed" as const },
      ],
      notRun: ["branchCoverage"],
    };
    assert.deepEqual(contextOnlyGates(summary, "not built"), {
      passed: true,
      checks: [
        { name: "coverage", status: "not-run", reason: "not built" },
        { name: "branchCoverage", status: "not-run", reason: "not built" },
        { name: "secrets", status: "passed" },
        { name: "dockerfileLint", status: "passed" },
      ],
      notRun: ["coverage", "branchCoverage"],
    });
    const leaked = {
      ...summary,
      checks: [...summary.checks, { name: "secrets", status: "failed" as const }],
    };
    assert.equal(contextOnlyGates(leaked, "not built").passed, false);
  });
});

describe("review command: small helpers", () => {
  it("writes the JSON beside the Markdown", () => {
    assert.equal(jsonPathFor("review.md"), "review.json");
    assert.equal(jsonPathFor("/tmp/out/Review.MD"), "/tmp/out/Review.json");
    assert.equal(jsonPathFor("review"), "review.json");
  });

  it("sizes an image from its manifest: compressed layer bytes and layer count", () => {
    assert.deepEqual(
      manifestSize({ config: { size: 1000 }, layers: [{ size: 10 }, { size: 32 }] }),
      { sizeBytes: 42, layers: 2 },
    );
    assert.throws(() => manifestSize({ manifests: [] }), /not an image manifest \(no layers\[\]\)/);
  });
});
