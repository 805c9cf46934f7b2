// scripts/local.sh prepares a stack (scripts/prepare-stack.ts, the Automation API) only when its
// inputs changed since the generated config was written: a warm command skips about 2 s. These
// tests drive the real script, pulumi CLI and file backend in a folder of their own and check that
// every input the stamp stands for still reaches the generated config.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { REPO_ROOT, type RunResult, runScript } from "../e2e/lib/exec";

describe("scripts/local.sh: the stack is prepared again only when its inputs change", function () {
  this.timeout(300_000);
  let dir: string;
  let base: string;
  const stack = "prepare-stamp";
  const env = (): Record<string, string> => ({
    IF_LOCAL_DIR: path.join(dir, "local"),
    IF_STACK: stack,
    IF_STACK_CONFIG: base,
  });
  const generated = (): Record<string, unknown> =>
    (
      parse(fs.readFileSync(path.join(dir, "local", "stacks", `Pulumi.${stack}.yaml`), "utf8")) as {
        config: Record<string, unknown>;
      }
    ).config;
  const stackLs = (): Promise<RunResult> =>
    runScript("local.sh", ["pulumi", "stack", "ls"], { env: env() });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-prepare-stamp-"));
    base = path.join(dir, "Pulumi.base.yaml");
    fs.copyFileSync(path.join(REPO_ROOT, "Pulumi.local.yaml"), base);
    await stackLs();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a changed base config reaches the generated config on the next command", async () => {
    const stamp = path.join(dir, "local", "stacks", `.prepared-${stack}`);
    const first = fs.readFileSync(stamp, "utf8");
    assert.match(first, /^[0-9a-f]{64}\n$/);
    fs.appendFileSync(base, '  image-factory:gitRef: "refs/heads/stamp-check"\n');
    await stackLs();
    assert.equal(generated()["image-factory:gitRef"], "refs/heads/stamp-check");
    assert.notEqual(fs.readFileSync(stamp, "utf8"), first);
  });

  it("a stack removed from the backend is created again, with its config", async () => {
    fs.rmSync(path.join(dir, "local", "state"), { recursive: true, force: true });
    const r = await stackLs();
    assert.match(r.stdout, new RegExp(`^${stack}\\b`, "m"));
    assert.equal(generated()["image-factory:gitRef"], "refs/heads/stamp-check");
  });

  it("a generated config deleted by hand is written again", async () => {
    fs.rmSync(path.join(dir, "local", "stacks", `Pulumi.${stack}.yaml`));
    await stackLs();
    assert.equal(generated()["image-factory:gitRef"], "refs/heads/stamp-check");
    const token = generated()["image-factory:registryToken"] as { secure?: unknown } | undefined;
    assert.match(String(token?.secure), /^v1:/);
  });
});
