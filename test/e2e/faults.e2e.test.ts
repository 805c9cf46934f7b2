// Faults leave nothing half-published, through the real engine, BuildKit and registry. One stack,
// one platform; each fault hits a `pulumi up` of a new source change at a chosen moment, then the
// fault is undone and a plain `pulumi up` must succeed with no manual state repair. After the
// failing run every moving tag is either where it was or at the new digest, and only if that digest
// was fully evidenced; after the recovery every tag is at the recovered digest.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  REPO_ROOT,
  TestStack,
  cacheDir,
  factoryStackConfig,
  ownFactoryStacks,
  run,
  tail,
} from "./lib";

const MOVING = ["main", "edge"];

/** What to show when a step fails: the engine's error lines first, then the end of the output. */
function why(output: string): string {
  const errors = output
    .split("\n")
    .filter((l) => /error|failed/i.test(l))
    .slice(0, 20);
  return `${errors.join("\n")}\n---\n${tail(output, 20)}`;
}

/** `scripts/local.sh up` whose output is watched: `fault` runs once a line matches `trigger`. */
function upWithFault(
  stack: TestStack,
  trigger: RegExp,
  fault: () => Promise<void>,
): Promise<{ code: number; output: string; faulted: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(REPO_ROOT, "scripts", "local.sh"), "up"], {
      env: { ...process.env, ...stack.env() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    let faulted = false;
    let faultDone: Promise<void> = Promise.resolve();
    const watch = (d: Buffer): void => {
      output += d.toString("utf8");
      if (!faulted && trigger.test(output)) {
        faulted = true;
        faultDone = fault();
      }
    };
    child.stdout.on("data", watch);
    child.stderr.on("data", watch);
    child.on("error", reject);
    child.on("close", (code) => {
      stack.logs.push(output);
      faultDone.then(() => resolve({ code: code ?? 1, output, faulted }), reject);
    });
  });
}

async function script(name: string, ...args: string[]): Promise<void> {
  const r = await run("bash", [path.join(REPO_ROOT, "scripts", name), ...args]);
  if (r.code !== 0) throw new Error(`scripts/${name} ${args.join(" ")} failed: ${tail(r.stderr)}`);
}

describe("faults leave nothing half-published (e2e, real engine, BuildKit and registry)", function () {
  this.timeout(60 * 60_000);
  const own = ownFactoryStacks("faults");
  const { runId, repository } = own;
  let stack: TestStack;
  let appDir: string;
  let current: string;

  /** A real source change per fault (one file rewritten, so repeated changes never collide). */
  function changeSource(marker: string): void {
    fs.writeFileSync(
      path.join(appDir, "src", "faultMarker.ts"),
      `export const faultMarker = ${JSON.stringify(marker)};\n`,
    );
  }

  async function movingTags(): Promise<Record<string, string>> {
    const all = await own.registry.tagDigests(repository);
    return Object.fromEntries(MOVING.map((t) => [t, all[t]]));
  }

  /** After a failed run: each moving tag at the old digest, or at a new one whose evidence passed. */
  async function assertNothingHalfPublished(before: Record<string, string>): Promise<void> {
    const after = await movingTags();
    for (const t of MOVING) {
      if (after[t] === before[t]) continue;
      const out = await stack.outputs<{
        digest?: string;
        gateResults?: { passed: boolean; digest?: string };
      }>();
      assert.equal(
        out.gateResults?.passed,
        true,
        `tag ${t} moved to ${after[t]} without passing evidence`,
      );
      assert.equal(
        out.gateResults?.digest,
        after[t],
        `tag ${t} moved to ${after[t]}, which is not the digest the evidence vouches for`,
      );
    }
  }

  async function recover(): Promise<void> {
    const r = await stack.local(["up"]);
    assert.equal(
      r.code,
      0,
      `the plain pulumi up after the fault failed:\n${tail(`${r.stdout}\n${r.stderr}`, 40)}`,
    );
    const out = await stack.outputs<{
      digest: string;
      gateResults: { passed: boolean; digest: string };
    }>();
    assert.equal(out.gateResults.passed, true);
    assert.equal(out.gateResults.digest, out.digest);
    assert.deepEqual(
      await movingTags(),
      Object.fromEntries(MOVING.map((t) => [t, out.digest])),
      "after recovery every moving tag is at the new digest",
    );
    current = out.digest;
  }

  before(async function () {
    ({ stack, appDir } = own.newStack("main"));
    stack.setConfig(
      factoryStackConfig({ repository, appDir, sha: own.sha, platforms: ["linux/amd64"] }),
    );
    await stack.up();
    current = (await stack.outputs<{ digest: string }>()).digest;
    assert.deepEqual(await movingTags(), { main: current, edge: current });
  });

  after(async () => {
    // Whatever happened, the shared services come back.
    await script("buildkit.sh");
    await script("registry-tls.sh");
  });

  it("the builder killed mid-build: the run fails, tags stay, the next up recovers", async () => {
    changeSource(`killed-builder-${runId}`);
    const before = await movingTags();
    const r = await upWithFault(
      stack,
      /docker-build:index:Image\s+image-linux-amd64\s+updating/,
      async () => {
        await new Promise((res) => setTimeout(res, 1500));
        await script("buildkit.sh", "stop");
      },
    );
    assert.ok(r.faulted, `the build never started:\n${why(r.output)}`);
    assert.notEqual(r.code, 0, `pulumi up passed with the builder killed:\n${why(r.output)}`);
    assert.match(r.output, /image-linux-amd64/, why(r.output));
    await assertNothingHalfPublished(before);
    assert.deepEqual(await movingTags(), before);
    await script("buildkit.sh");
    await recover();
  });

  it("the registry stopped during the evidence: the error names the component and the registry, tags stay, the next up recovers", async () => {
    changeSource(`registry-down-evidence-${runId}`);
    const before = await movingTags();
    // A platform's scan reads the registry longest (the judging reads only the coverage).
    const r = await upWithFault(stack, /evidence-scans-linux-amd64\s+updating/, () =>
      script("registry-tls.sh", "stop"),
    );
    assert.ok(r.faulted, `the evidence never started:\n${why(r.output)}`);
    assert.notEqual(r.code, 0, `pulumi up passed with the registry down:\n${why(r.output)}`);
    assert.match(
      r.output,
      /SupplyChainEvidence for 127\.0\.0\.1:5443\/image-factory\/faults-/,
      why(r.output),
    );
    assert.match(
      r.output,
      /Check that the registry 127\.0\.0\.1:5443 is reachable .* then run `pulumi up` again/,
      why(r.output),
    );
    await assertNothingHalfPublished(before);
    await script("registry-tls.sh");
    await recover();
  });

  it("the registry stopped during the publish step: each tag old or fully evidenced, the next up recovers", async () => {
    changeSource(`registry-down-publish-${runId}`);
    const before = await movingTags();
    const r = await upWithFault(stack, /publish-index\s+(creating|updating)/, () =>
      script("registry-tls.sh", "stop"),
    );
    assert.ok(r.faulted, `the publish step never started:\n${why(r.output)}`);
    assert.notEqual(r.code, 0, `pulumi up passed with the registry down:\n${why(r.output)}`);
    await assertNothingHalfPublished(before);
    await script("registry-tls.sh");
    await recover();
  });

  it("an evidence tool crashing: the run fails naming the tool, tags stay, the next up recovers", async () => {
    changeSource(`crashing-syft-${runId}`);
    const before = await movingTags();
    const link = path.join(cacheDir(), "bin", "syft");
    const real = fs.readlinkSync(link);
    const crasher = path.join(stack.dir, "syft-crash.sh");
    // A real crash of a real process (SIGSEGV), standing in for the pinned binary for this run only.
    fs.writeFileSync(crasher, "#!/bin/sh\nkill -SEGV $$\n", { mode: 0o755 });
    let r: { code: number; output: string };
    try {
      fs.rmSync(link);
      fs.symlinkSync(crasher, link);
      r = await stack
        .local(["up"])
        .then((x) => ({ code: x.code, output: `${x.stdout}\n${x.stderr}` }));
    } finally {
      fs.rmSync(link, { force: true });
      fs.symlinkSync(real, link);
    }
    assert.notEqual(r.code, 0, `pulumi up passed with a crashing syft:\n${why(r.output)}`);
    assert.match(
      r.output,
      /SupplyChainEvidence for .*the evidence scans failed before judging/,
      why(r.output),
    );
    assert.match(r.output, /syft failed on .*exit 1\d\d/, why(r.output));
    await assertNothingHalfPublished(before);
    assert.deepEqual(await movingTags(), before);
    await recover();
  });
});
