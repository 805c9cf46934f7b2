// Supply-chain evidence on real images: the app built for every platform on the real engine,
// pushed to the local registry, then the SupplyChainEvidence provider — serialized and loaded back
// exactly as Pulumi's dynamic-provider host does — runs the real Syft, Trivy, Hadolint and Dive.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_GATES } from "../../components/gates";
import {
  type EvidenceRunOutputs,
  OFFLINE_REQUIRED_CHECKS,
  evidenceProvider,
  fetchSbomArtifact,
  runHadolint,
  runTrivyConfig,
} from "../../components/supplyChain";
import type { GatesConfig } from "../../components/types";
import {
  REPO_ROOT,
  run,
  APP_DIR,
  APP_SECRETS,
  PLATFORMS,
  appBuildArgs,
  appDevDependencies,
  bringUpLocalStack,
  buildImage,
  copyAppContext,
  platformSlug,
  pushImage,
  runScript,
  type LocalStack,
} from "./lib";

const REPO = "image-factory/supply-chain-e2e";

interface SpdxDocument {
  spdxVersion: string;
  packages: Array<{ name: string; versionInfo?: string }>;
}

type Provider = Required<Pick<pulumi.dynamic.ResourceProvider, "create">>;

/** Serializes the provider the way `pulumi.dynamic.Resource` stores it in `__provider`, and loads
 *  it back the way the dynamic-provider host does (require-from-string + handler()). */
async function loadSerializedProvider(): Promise<{ provider: Provider; text: string }> {
  const serialized = await pulumi.runtime.serializeFunction(() => evidenceProvider, { allowSecrets: false });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const requireFromString = require("require-from-string") as (code: string) => { handler: () => Provider };
  return { provider: requireFromString(serialized.text).handler(), text: serialized.text };
}

function appProductionDependencies(): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(APP_DIR, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  return pkg.dependencies ?? {};
}

async function buildAndPush(stack: LocalStack, context: string, platform: string, tag: string): Promise<string> {
  const ref = `${stack.registry}/${REPO}:${tag}`;
  await buildImage({ context, tag: ref, platform, buildArgs: appBuildArgs(stack.baseImage), secrets: APP_SECRETS });
  return pushImage(ref);
}

function evidenceInputs(stack: LocalStack, digests: Record<string, string>, over: Record<string, unknown> = {}) {
  return {
    imageName: `${stack.registry}/${REPO}`,
    platformDigests: digests,
    registryUsername: stack.auth.username,
    registryToken: stack.auth.password,
    dockerfile: path.join(APP_DIR, "Dockerfile"),
    contextDir: APP_DIR,
    coverageSummaryPath: path.join(APP_DIR, "coverage", "coverage-summary.json"),
    gates: DEFAULT_GATES as GatesConfig,
    outputDir: fs.mkdtempSync(path.join(os.tmpdir(), "if-evidence-")),
    sbomStore: "oci",
    requiredChecks: OFFLINE_REQUIRED_CHECKS,
    vulnerabilityScan: true,
    contentHash: "e2e",
    ...over,
  };
}

describe("supply-chain evidence on real images (e2e)", function () {
  this.timeout(3_600_000);
  let stack: LocalStack;
  let provider: Provider;
  let providerText: string;
  const digests: Record<string, string> = {};

  before(async function () {
    this.timeout(3_600_000);
    stack = await bringUpLocalStack();
    // Idempotent: a no-op when the pinned scanners are cached; builds them on a new machine.
    await runScript("install-scanners.sh", [], { timeoutMs: 3_500_000 });
    ({ provider, text: providerText } = await loadSerializedProvider());
    const context = copyAppContext("if-sc-ctx-");
    try {
      for (const platform of PLATFORMS) {
        digests[platform] = await buildAndPush(stack, context, platform, `ok-${platformSlug(platform)}`);
      }
    } finally {
      fs.rmSync(context, { recursive: true, force: true });
    }
  });

  it("publishes an SPDX SBOM per platform naming the production dependencies and no devDependency", async () => {
    const inputs = evidenceInputs(stack, digests);
    const started = Date.now();
    const { outs } = await provider.create(inputs);
    const out = outs as EvidenceRunOutputs;
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual(Object.keys(out.sbomLocations).sort(), [...PLATFORMS].sort());
    const prod = appProductionDependencies();
    const dev = appDevDependencies();
    assert.ok(Object.keys(prod).length > 0, "app/package.json has no production dependency to look for");
    for (const platform of PLATFORMS) {
      const location = out.sbomLocations[platform];
      assert.match(location, new RegExp(`^oci://127\\.0\\.0\\.1:5000/${REPO}@sha256:[0-9a-f]{64}$`));
      const doc = (await fetchSbomArtifact(location, { registry: stack.registry, username: stack.auth.username, password: stack.auth.password })) as SpdxDocument;
      assert.equal(doc.spdxVersion, "SPDX-2.3", `${platform}: not an SPDX 2.3 document`);
      const names = new Map(doc.packages.map((p) => [p.name, p.versionInfo]));
      for (const [name, version] of Object.entries(prod)) {
        assert.equal(names.get(name), version.replace(/^[\^~]/, ""), `${platform}: SBOM lacks production dependency ${name}@${version}`);
      }
      for (const name of dev) {
        assert.ok(!names.has(name), `${platform}: SBOM names devDependency ${name}`);
      }
      // The same SBOM is on disk under the stack's evidence folder.
      const file = path.join(inputs.outputDir, "sbom", `${platform.replace(/\//g, "-")}.spdx.json`);
      const onDisk = JSON.parse(fs.readFileSync(file, "utf8")) as SpdxDocument;
      assert.equal(onDisk.packages.length, doc.packages.length);
      assert.ok(fs.existsSync(file.replace(".spdx.json", ".cdx.json")), `${platform}: no CycloneDX SBOM`);
      const p = out.platforms[platform];
      console.log(
        `      ${platform}: ${p.packageCount} packages, ${((p.sizeBytes ?? 0) / 1024 / 1024).toFixed(1)} MB, dive efficiency ${p.efficiency}, wasted ${p.wastedBytes} B, seconds ${JSON.stringify(p.seconds)}`,
      );
    }
    console.log(`      evidence for ${PLATFORMS.length} platforms in ${seconds.toFixed(1)} s`);
    // Gates: everything offline ran and passed; the vulnerability scan is reported not run.
    assert.equal(out.gateResults.passed, true, JSON.stringify(out.gateResults.failed));
    for (const platform of PLATFORMS) {
      const vuln = out.gateResults.checks.find((c) => c.gate === `criticalVulnerabilities[${platform}]`);
      assert.ok(vuln, "no vulnerability check");
      assert.notEqual(vuln.status, "passed", "offline, the vulnerability check must not report passed");
      assert.equal(vuln.passed, false);
      const size = out.gateResults.checks.find((c) => c.gate === `imageSize[${platform}]`);
      assert.equal(size?.status, "passed");
    }
    // The token stays out of what Pulumi would store: the serialized provider and the outputs.
    assert.ok(!providerText.includes(stack.auth.password), "registry password in the serialized provider");
    assert.ok(!JSON.stringify(outs).includes(stack.auth.password), "registry password in the resource outputs");
    assert.ok(!fs.readFileSync(path.join(inputs.outputDir, "gate-results.json"), "utf8").includes(stack.auth.password));
    fs.rmSync(inputs.outputDir, { recursive: true, force: true });
  });

  it("fails the scan and lint gates on a Dockerfile with a planted AWS key and a root user", async () => {
    const context = copyAppContext("if-sc-planted-");
    // Built at run time so the repository itself never carries a key-shaped string.
    const key = `AKIA${"QX7ZJ2K4M9R3T8VW".split("").reverse().join("")}`;
    const dockerfile = path.join(context, "Dockerfile");
    fs.appendFileSync(dockerfile, `\nENV AWS_ACCESS_KEY_ID=${key}\nUSER root\n`);
    try {
      const lint = await runHadolint({ dockerfile });
      assert.ok(lint.findings.some((f) => f.id === "DL3002"), `hadolint did not flag the root user: ${JSON.stringify(lint.findings)}`);
      const scan = await runTrivyConfig({ dir: context, reportPath: path.join(context, "..", `${path.basename(context)}-trivy.json`) });
      assert.ok(scan.secrets.some((f) => f.id === "aws-access-key-id"), `trivy found no AWS key: ${JSON.stringify(scan.secrets)}`);

      const digest = await buildAndPush(stack, context, "linux/amd64", "planted-amd64");
      const inputs = evidenceInputs(stack, { "linux/amd64": digest }, { dockerfile, contextDir: context, sbomStore: "file" });
      await assert.rejects(provider.create(inputs), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.equal(e.name, "GateError");
        assert.match(e.message, /gate dockerfileLint failed: measured \d+ findings, limit 0 findings .*DL3002/);
        assert.match(e.message, /gate secrets failed: measured 1 findings, limit 0 findings .*aws-access-key-id/);
        assert.match(e.message, /gate misconfigurations failed: .*(root|DS-?0*02)/i);
        assert.match(e.message, /gate imageSecrets\[linux\/amd64\] failed/);
        assert.ok(!e.message.includes(key), "the gate message repeats the secret");
        return true;
      });
      const results = JSON.parse(fs.readFileSync(path.join(inputs.outputDir, "gate-results.json"), "utf8")) as EvidenceRunOutputs;
      assert.equal(results.gateResults.passed, false);
      fs.rmSync(inputs.outputDir, { recursive: true, force: true });
    } finally {
      fs.rmSync(context, { recursive: true, force: true });
    }
  });

  it("fails the size gate when the limit is below the image's real size", async () => {
    const inputs = evidenceInputs(stack, { "linux/amd64": digests["linux/amd64"] }, { sbomStore: "file", gates: { ...DEFAULT_GATES, maxImageSizeMb: 50 } });
    await assert.rejects(provider.create(inputs), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /1 quality gate failed/);
      assert.match(e.message, /gate imageSize\[linux\/amd64\] failed: measured \d+(\.\d+)? MB, limit 50 MB/);
      return true;
    });
    fs.rmSync(inputs.outputDir, { recursive: true, force: true });
  });

  describe("through the real Pulumi engine (file backend)", function () {
    let project: string;
    let env: NodeJS.ProcessEnv;
    const binDir = path.join(process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory"), "bin");

    async function pulumiCli(args: string[]): Promise<{ code: number; output: string }> {
      const r = await run(path.join(binDir, "pulumi"), [...args, "--non-interactive"], { cwd: project, env });
      return { code: r.code, output: `${r.stdout}\n${r.stderr}` };
    }

    before(async function () {
      this.timeout(600_000);
      for (const tool of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
        if (!fs.existsSync(path.join(binDir, tool))) {
          throw new Error(`${tool} is not installed in ${binDir}: run scripts/install-go-tools.sh (the Pulumi CLI, its Node.js language host and dynamic-provider host)`);
        }
      }
      // Inside the repository so that @pulumi/pulumi and ts-node resolve from its node_modules.
      fs.mkdirSync(path.join(REPO_ROOT, ".local"), { recursive: true });
      project = fs.mkdtempSync(path.join(REPO_ROOT, ".local", "sc-e2e-"));
      fs.mkdirSync(path.join(project, "state"));
      fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: sc-e2e\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n");
      fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "sc-e2e", private: true, main: "index.ts" }));
      fs.writeFileSync(
        path.join(project, "index.ts"),
        [
          `import * as pulumi from "@pulumi/pulumi";`,
          `import { SupplyChainEvidence } from ${JSON.stringify(path.join(REPO_ROOT, "components", "supplyChain"))};`,
          `const cfg = new pulumi.Config("e2e");`,
          `const ev = new SupplyChainEvidence("sc", {`,
          `  imageName: cfg.require("imageName"),`,
          `  platformDigests: cfg.requireObject<Record<string, string>>("platformDigests"),`,
          `  registryUsername: cfg.require("registryUsername"),`,
          `  registryToken: cfg.requireSecret("registryToken"),`,
          `  dockerfile: ${JSON.stringify(path.join(APP_DIR, "Dockerfile"))},`,
          `  gates: { maxImageSizeMb: cfg.requireNumber("maxImageSizeMb"), minCoverage: 80, maxCritical: 0, minEfficiency: ${DEFAULT_GATES.minEfficiency}, maxWastedMb: ${DEFAULT_GATES.maxWastedMb} },`,
          `  outputDir: ".local/evidence/e2e",`,
          `});`,
          `export const sbomLocations = ev.sbomLocations;`,
          `export const gateResults = ev.gateResults;`,
          "",
        ].join("\n"),
      );
      env = {
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`,
        PULUMI_HOME: path.join(project, ".pulumi-home"),
        PULUMI_BACKEND_URL: `file://${path.join(project, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: "supply-chain-e2e",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        IMAGE_FACTORY_PROJECT_DIR: project,
      };
      const init = await pulumiCli(["stack", "init", "e2e"]);
      assert.equal(init.code, 0, init.output);
      const settings: Array<[string, string, boolean]> = [
        ["e2e:imageName", `${stack.registry}/${REPO}`, false],
        ["e2e:registryUsername", stack.auth.username, false],
        ["e2e:maxImageSizeMb", "500", false],
        ["image-factory:platforms", JSON.stringify(["linux/amd64", "linux/arm64"]), false],
      ];
      for (const [key, value] of settings) {
        const r = await pulumiCli(["config", "set", "--stack", "e2e", key, value]);
        assert.equal(r.code, 0, r.output);
      }
      const digest = await pulumiCli(["config", "set", "--stack", "e2e", "--path", `e2e:platformDigests["linux/amd64"]`, digests["linux/amd64"]]);
      assert.equal(digest.code, 0, digest.output);
      // The secret goes in through stdin, never on a command line.
      const secret = await run(path.join(binDir, "pulumi"), ["config", "set", "--stack", "e2e", "--secret", "e2e:registryToken", "--non-interactive"], {
        cwd: project,
        env,
        input: stack.auth.password,
      });
      assert.equal(secret.code, 0, `${secret.stdout}\n${secret.stderr}`);
    });

    after(async () => {
      if (project !== undefined) fs.rmSync(project, { recursive: true, force: true });
    });

    it("pulumi up publishes sbomLocations and gateResults; the state never holds the token", async () => {
      const up = await pulumiCli(["up", "--stack", "e2e", "--yes", "--skip-preview"]);
      assert.equal(up.code, 0, up.output);
      const out = await pulumiCli(["stack", "output", "--stack", "e2e", "--json"]);
      const outputs = JSON.parse(out.output.slice(out.output.indexOf("{"), out.output.lastIndexOf("}") + 1)) as {
        sbomLocations: Record<string, string>;
        gateResults: { passed: boolean; notRun: string[] };
      };
      const location = outputs.sbomLocations["linux/amd64"];
      assert.match(location, /^file:\/\/.*\/\.local\/evidence\/e2e\/sbom\/linux-amd64\.spdx\.json$/);
      const doc = JSON.parse(fs.readFileSync(location.slice("file://".length), "utf8")) as SpdxDocument;
      assert.equal(doc.spdxVersion, "SPDX-2.3");
      assert.equal(outputs.gateResults.passed, true);
      assert.deepEqual(outputs.gateResults.notRun, ["criticalVulnerabilities[linux/amd64]"]);
      const stateFiles = (await run("find", [path.join(project, "state"), "-type", "f", "-name", "*.json"])).stdout.split("\n").filter((f) => f !== "");
      assert.ok(stateFiles.length > 0, "no state file written");
      for (const f of stateFiles) {
        assert.ok(!fs.readFileSync(f, "utf8").includes(stack.auth.password), `registry token in ${f}`);
      }
      assert.ok(!up.output.includes(stack.auth.password), "registry token in the pulumi up output");
      // A second preview on unchanged inputs rescans nothing.
      const preview = await pulumiCli(["preview", "--stack", "e2e", "--diff"]);
      assert.equal(preview.code, 0, preview.output);
      assert.doesNotMatch(preview.output, /~ .*supplychain:Evidence|\+ .*supplychain:Evidence/);
    });

    it("a failing gate fails pulumi up with the gate, the measured value and the limit", async () => {
      const set = await pulumiCli(["config", "set", "--stack", "e2e", "e2e:maxImageSizeMb", "50"]);
      assert.equal(set.code, 0, set.output);
      const up = await pulumiCli(["up", "--stack", "e2e", "--yes", "--skip-preview"]);
      assert.notEqual(up.code, 0, "pulumi up passed with a size gate below the image size");
      assert.match(up.output, /gate imageSize\[linux\/amd64\] failed: measured \d+(\.\d+)? MB, limit 50 MB/);
    });

    it("the policy pack refuses a preview that builds none of the configured platforms, and passes a promotion stack", async () => {
      const bad = await pulumiCli(["preview", "--stack", "e2e", "--policy-pack", path.join(REPO_ROOT, "policy")]);
      assert.notEqual(bad.code, 0, bad.output);
      assert.match(bad.output, /every-platform-built/);
      assert.match(bad.output, /configured platforms linux\/amd64, linux\/arm64 not built by any docker-build Image/);
      const promote = await pulumiCli(["config", "set", "--stack", "e2e", "image-factory:promoteFrom", "dev"]);
      assert.equal(promote.code, 0, promote.output);
      const good = await pulumiCli(["preview", "--stack", "e2e", "--policy-pack", path.join(REPO_ROOT, "policy")]);
      assert.doesNotMatch(good.output, /mandatory/);
      assert.match(good.output, /image-factory-policy/);
    });
  });

  it("the policy pack passes a real preview of the local stack (scripts/local.sh)", async () => {
    await runScript("bootstrap.sh", [], { timeoutMs: 3_500_000 });
    const r = await run("bash", [path.join(REPO_ROOT, "scripts", "local.sh"), "preview", "--policy-pack", path.join(REPO_ROOT, "policy")], {
      env: { CI: "true", IMAGE_FACTORY_STACK_CONFIG: path.join(REPO_ROOT, ".local", "stacks", "Pulumi.local.yaml") },
      timeoutMs: 3_000_000,
    });
    const output = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.code, 0, output.slice(-4000));
    assert.match(output, /✅ image-factory-policy@v[0-9.]+/);
    assert.doesNotMatch(output, /\[mandatory\]/);
  });
});
