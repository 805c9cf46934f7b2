// Gates that hold, through the real `pulumi up` of the whole factory on the local stack: a clean
// app publishes its tags; then each bad change (a production dependency with a CRITICAL advisory,
// coverage below the limit, an image over the size limit) fails `pulumi up` at its named gate with
// the measured value and the limit, on a fresh stack of its own that publishes into the same
// repository — and every tag in that repository is read from the registry before and after, to
// show that nothing a user can pull moved.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BoundGateResults } from "../../evidence/gates";
import {
  STACK_REGISTRY,
  TestStack,
  factoryStackConfig,
  ownFactoryStacks,
  run,
  tail,
  touchAppSource,
  userTags,
} from "./lib";

const PLATFORM = "linux/amd64";

describe("gates hold: nothing moves until the evidence on the exact digest passes (e2e, real pulumi up)", function () {
  this.timeout(60 * 60_000);
  const own = ownFactoryStacks("gates");
  const { repository, newStack } = own;
  let published: Record<string, string>;

  function configure(stack: TestStack, appDir: string, gates?: Record<string, unknown>): void {
    const config = factoryStackConfig({
      repository,
      appDir,
      sha: own.sha,
      platforms: [PLATFORM],
      cacheRepository: `${repository}-cache`,
    });
    if (gates !== undefined) config["image-factory:gates"] = gates;
    stack.setConfig(config);
  }

  /** A failing `pulumi up`: its output, after checking that no tag in the repository moved. */
  async function failingUp(stack: TestStack): Promise<string> {
    const before = await own.registry.tagDigests(repository);
    const r = await stack.local(["up"]);
    const output = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(r.code, 0, `pulumi up passed:\n${tail(output, 30)}`);
    const after = await own.registry.tagDigests(repository);
    // The quarantined platform image may add its own sha-<7>-<platform> tag; nothing else may change.
    assert.deepEqual(userTags(after), userTags(before), "a failing pulumi up moved a tag");
    assert.deepEqual(
      userTags(after),
      published,
      "the published tags are not where the clean run put them",
    );
    return output;
  }

  it("the clean app: every check passed with measured numbers, notRun empty, results bound to the digests, tags published", async () => {
    const { stack, appDir } = newStack("clean");
    configure(stack, appDir);
    await stack.up();
    const out = await stack.outputs<{
      digest: string;
      platformDigests: Record<string, string>;
      tags: string[];
      gateResults: BoundGateResults;
    }>();
    const g = out.gateResults;
    assert.equal(g.passed, true, JSON.stringify(g.failed));
    assert.deepEqual(g.notRun, []);
    assert.deepEqual(g.failed, []);
    assert.equal(g.digest, out.digest);
    assert.deepEqual(g.platformDigests, out.platformDigests);
    assert.equal(g.imageName, `${STACK_REGISTRY}/${repository}`);
    assert.equal(g.sourceRevision, own.sha);
    for (const name of [
      "coverage",
      "branchCoverage",
      "functionCoverage",
      `criticalVulnerabilities[${PLATFORM}]`,
      `imageSize[${PLATFORM}]`,
    ]) {
      const c = g.checks.find((x) => x.gate === name);
      assert.equal(c?.status, "passed", `${name}: ${JSON.stringify(c)}`);
      assert.equal(typeof c.measured, "number", `${name} has no measured value`);
    }
    assert.ok((g.checks.find((x) => x.gate === "coverage")?.measured ?? 0) >= 80);
    assert.match(
      g.tools.trivyDb ?? "",
      /trivy-db/,
      `the vulnerability DB that judged is not recorded: ${JSON.stringify(g.tools)}`,
    );
    for (const tool of ["syft", "trivy", "hadolint", "dive"])
      assert.match(
        g.tools[tool] ?? "",
        /^\d+\.\d+\.\d+$/,
        `${tool} version: ${JSON.stringify(g.tools)}`,
      );
    const tags = await own.registry.tagDigests(repository);
    for (const t of ["main", "edge", `sha-${own.sha.slice(0, 7)}`, `sha-${own.sha}`])
      assert.equal(tags[t], out.digest, `tag ${t}`);
    published = userTags(tags);
    console.log(`      clean: ${g.checks.map((c) => `${c.gate}=${c.measured}`).join(" ")}`);
  });

  it("a production dependency with a CRITICAL advisory (minimist 1.2.5, CVE-2021-44906) fails criticalVulnerabilities and moves no tag", async () => {
    assert.ok(published, "the clean run did not publish");
    const { stack, appDir } = newStack("critical");
    const npm = await run(
      "npm",
      [
        "install",
        "--package-lock-only",
        "--ignore-scripts",
        "--save-exact",
        "--no-audit",
        "--no-fund",
        "minimist@1.2.5",
      ],
      { cwd: appDir },
    );
    assert.equal(npm.code, 0, tail(npm.stderr));
    configure(stack, appDir);
    const output = await failingUp(stack);
    assert.match(
      output,
      new RegExp(
        `gate criticalVulnerabilities\\[${PLATFORM.replace("/", "\\/")}\\] failed: measured 1, limit 0`,
      ),
      tail(output, 30),
    );
    assert.match(output, /No tag was moved/);
  });

  it("app sources whose tests leave coverage below the limit fail the coverage gate and move no tag", async () => {
    assert.ok(published, "the clean run did not publish");
    const { stack, appDir } = newStack("coverage");
    // Real, compiled, never-tested code: 120 functions nobody calls.
    const body = Array.from(
      { length: 120 },
      (_, i) =>
        `export function untested${i}(x: number): number {\n  if (x > ${i}) {\n    return x - ${i};\n  }\n  return x + ${i};\n}\n`,
    ).join("");
    fs.writeFileSync(path.join(appDir, "src", "untested.ts"), body);
    configure(stack, appDir);
    const output = await failingUp(stack);
    assert.match(
      output,
      /gate coverage failed: measured \d+(\.\d+)? %, limit 80 %/,
      tail(output, 30),
    );
    // c8 counts a module no test loads as uncovered lines (`all: true`); its functions go unseen, so
    // the line gate is the one that fails.
    assert.match(
      output,
      /1 quality gate failed on linux\/amd64=sha256:[0-9a-f]{12}:\n\s+gate coverage failed/,
      tail(output, 30),
    );
  });

  it("an image over gates.maxImageSizeMb fails imageSize and moves no tag", async () => {
    assert.ok(published, "the clean run did not publish");
    const { stack, appDir } = newStack("size");
    // A source change too, so that a tag that moved would point at a new digest.
    touchAppSource(appDir, "size-gate");
    configure(stack, appDir, { maxImageSizeMb: 50 });
    const output = await failingUp(stack);
    assert.match(
      output,
      new RegExp(
        `gate imageSize\\[${PLATFORM.replace("/", "\\/")}\\] failed: measured \\d+(\\.\\d+)? MB, limit 50 MB`,
      ),
      tail(output, 30),
    );
  });
});
