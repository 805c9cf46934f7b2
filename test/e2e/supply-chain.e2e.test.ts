// Supply-chain evidence on the local stack: the SBOMs and gate results the shared stack's
// `pulumi up` exported (SupplyChainEvidence running the real Syft, Trivy, Hadolint and Dive on
// the images docker-build pushed), read back from where the exports say they are. The failing
// cases need bad inputs of their own and go through `pulumi up` too: a planted secret and a root
// user through the whole factory program on their own stack, a size limit below the image's real
// size through a small program holding only SupplyChainEvidence over the shared stack's digests.
// Nothing here builds with `docker build`.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_GATES } from "../../evidence/gates";
import type { GateResults } from "../../evidence/gates";
import { platformSlug } from "../../components/naming";
import { fetchSbomArtifact, headManifest, pushSbomArtifact } from "../../evidence/oci";
import { pullAndSave, removePulledImage } from "../../evidence/scanners/dive";
import { runHadolint } from "../../evidence/scanners/hadolint";
import { runTrivyConfig } from "../../evidence/scanners/trivy";
import {
  APP_DIR,
  DOCKER,
  LOCAL_REGISTRY,
  PLATFORMS,
  REPO_ROOT,
  STACK_REGISTRY,
  TestStack,
  appDevDependencies,
  cacheDir,
  copyApp,
  factoryStackConfig,
  findSecret,
  localRegistryAuth,
  localStackConfig,
  pullImage,
  removeImage,
  run,
  scratchPulumiProject,
  sharedFactoryStack,
  tail,
  type FactoryOutputs,
  type SharedFactoryStack,
} from "./lib";

interface SpdxDocument {
  spdxVersion: string;
  packages: Array<{ name: string; versionInfo?: string }>;
}

type EvidenceOutputs = FactoryOutputs & {
  sbomLocations: Record<string, string>;
  gateResults: GateResults;
};

function appProductionDependencies(): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(APP_DIR, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  return pkg.dependencies ?? {};
}

/** The program writes evidence under `.local/evidence/<stack>` of its working directory (the repository). */
function evidenceDirOf(stack: string): string {
  return path.join(REPO_ROOT, ".local", "evidence", stack);
}

interface EngineImage {
  id: string;
  /** `repository@digest` and `repository:tag` references (`<none>` parts left out). */
  refs: string[];
}

/** Every image in the engine's store with its references: what an evidence run may add to. */
async function engineImages(): Promise<EngineImage[]> {
  const r = await run(DOCKER, [
    "image",
    "ls",
    "--all",
    "--digests",
    "--no-trunc",
    "--format",
    "{{.ID}} {{.Repository}} {{.Tag}} {{.Digest}}",
  ]);
  if (r.code !== 0) throw new Error(`docker image ls failed (exit ${r.code}): ${tail(r.stderr)}`);
  const byId = new Map<string, string[]>();
  for (const line of r.stdout.split("\n").filter((l) => l.trim() !== "")) {
    const [id, repo, tag, digest] = line.trim().split(/\s+/);
    const refs = byId.get(id) ?? [];
    if (repo !== "<none>" && tag !== "<none>") refs.push(`${repo}:${tag}`);
    if (repo !== "<none>" && digest !== "<none>") refs.push(`${repo}@${digest}`);
    byId.set(id, refs);
  }
  return [...byId.entries()].map(([id, refs]) => ({ id, refs }));
}

/** Images in the engine with a reference into `repository` (`registry/repo`). */
function imagesOf(images: EngineImage[], repository: string): EngineImage[] {
  return images.filter((i) =>
    i.refs.some((r) => r.startsWith(`${repository}@`) || r.startsWith(`${repository}:`)),
  );
}

describe("supply-chain evidence on the local stack (e2e)", function () {
  // A first bring-up builds the tools, the base and three images: minutes.
  this.timeout(60 * 60_000);
  let shared: SharedFactoryStack;
  let outputs: EvidenceOutputs;
  const stacks: TestStack[] = [];

  before(async function () {
    this.timeout(60 * 60_000);
    shared = await sharedFactoryStack();
    outputs = shared.outputs as EvidenceOutputs;
  });

  after(function () {
    if (process.env.IF_E2E_KEEP === "1") return;
    for (const s of stacks) {
      s.remove();
      fs.rmSync(evidenceDirOf(s.stack), { recursive: true, force: true });
    }
  });

  it("exports an SPDX SBOM per platform at sbomLocations, naming the production dependencies and no devDependency", async () => {
    assert.ok(
      outputs.sbomLocations !== undefined,
      `the stack exports no sbomLocations: ${JSON.stringify(Object.keys(outputs))}`,
    );
    assert.deepEqual(Object.keys(outputs.sbomLocations).sort(), [...PLATFORMS].sort());
    const prod = appProductionDependencies();
    const dev = appDevDependencies();
    assert.ok(
      Object.keys(prod).length > 0,
      "app/package.json has no production dependency to look for",
    );
    assert.ok(dev.length > 0, "app/package.json has no devDependency to look for");
    const sbomDir = path.join(evidenceDirOf(shared.stack.stack), "sbom");
    for (const platform of PLATFORMS) {
      const location = outputs.sbomLocations[platform];
      // On the local stack the SBOMs are files under the stack's evidence folder (sbomStore "file").
      assert.equal(
        location,
        `file://${path.join(sbomDir, `${platformSlug(platform)}.spdx.json`)}`,
        `${platform}: unexpected SBOM location`,
      );
      const file = location.slice("file://".length);
      assert.ok(fs.existsSync(file), `${platform}: no SBOM at the exported location ${location}`);
      const doc = JSON.parse(fs.readFileSync(file, "utf8")) as SpdxDocument;
      assert.equal(doc.spdxVersion, "SPDX-2.3", `${platform}: not an SPDX 2.3 document`);
      const names = new Map(doc.packages.map((p) => [p.name, p.versionInfo]));
      for (const [name, version] of Object.entries(prod)) {
        assert.equal(
          names.get(name),
          version.replace(/^[\^~]/, ""),
          `${platform}: SBOM lacks production dependency ${name}@${version}`,
        );
      }
      for (const name of dev) {
        assert.ok(!names.has(name), `${platform}: SBOM names devDependency ${name}`);
      }
      assert.ok(
        fs.existsSync(file.replace(/\.spdx\.json$/, ".cdx.json")),
        `${platform}: no CycloneDX SBOM beside ${file}`,
      );
      console.log(`      ${platform}: ${doc.packages.length} SPDX packages`);
    }
  });

  it("publishes an SBOM as an OCI artifact whose subject is its platform image (the dev/prod store) and reads it back", async () => {
    // dev/prod export oci:// locations (sbomStore "oci"); the same code path on the local registry's
    // plain-HTTP door, which serves the storage the stack pushed to.
    const platform = "linux/amd64";
    const imageName = outputs.imageName.replace(STACK_REGISTRY, LOCAL_REGISTRY);
    const auth = { registry: LOCAL_REGISTRY, ...localRegistryAuth() };
    const digest = outputs.platformDigests[platform];
    const subject = await headManifest(auth, imageName, digest);
    const file = outputs.sbomLocations[platform].slice("file://".length);
    const uri = await pushSbomArtifact({
      imageName,
      subjectDigest: digest,
      subjectSize: subject.size,
      subjectMediaType: subject.mediaType,
      sbomPath: file,
      platform,
      auth,
    });
    const m = /^oci:\/\/127\.0\.0\.1:5000\/(.+)@(sha256:[0-9a-f]{64})$/.exec(uri);
    assert.ok(m, `unexpected SBOM location ${uri}`);
    assert.deepEqual(await fetchSbomArtifact(uri, auth), JSON.parse(fs.readFileSync(file, "utf8")));
    const basic = Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
    const res = await fetch(`http://${LOCAL_REGISTRY}/v2/${m[1]}/manifests/${m[2]}`, {
      headers: {
        authorization: `Basic ${basic}`,
        accept: "application/vnd.oci.image.manifest.v1+json",
      },
    });
    assert.equal(res.status, 200);
    const manifest = (await res.json()) as { artifactType?: string; subject?: { digest: string } };
    assert.equal(manifest.subject?.digest, digest, "the SBOM artifact does not refer to its image");
    assert.match(manifest.artifactType ?? "", /spdx/);
  });

  it("exports gateResults: every gate ran and passed, the vulnerability scan included, notRun empty", async () => {
    const results = outputs.gateResults;
    assert.ok(results !== undefined, "the stack exports no gateResults");
    assert.equal(results.passed, true, JSON.stringify(results.failed));
    for (const platform of PLATFORMS) {
      const size = results.checks.find((c) => c.gate === `imageSize[${platform}]`);
      assert.equal(size?.status, "passed", `${platform}: ${JSON.stringify(size)}`);
      assert.ok(
        size.measured !== null && size.measured <= DEFAULT_GATES.maxImageSizeMb,
        `${platform}: ${JSON.stringify(size)}`,
      );
      for (const gate of [
        `efficiency[${platform}]`,
        `wasted[${platform}]`,
        `imageSecrets[${platform}]`,
      ]) {
        const check = results.checks.find((c) => c.gate === gate);
        assert.equal(check?.status, "passed", `${gate}: ${JSON.stringify(check)}`);
      }
      const vuln = results.checks.find((c) => c.gate === `criticalVulnerabilities[${platform}]`);
      assert.equal(vuln?.status, "passed", `${platform}: ${JSON.stringify(vuln)}`);
      assert.equal(vuln.measured, 0);
    }
    assert.deepEqual(results.notRun, []);
    for (const gate of [
      "dockerfileLint",
      "misconfigurations",
      "secrets",
      "coverage",
      "branchCoverage",
      "functionCoverage",
    ]) {
      assert.equal(results.checks.find((c) => c.gate === gate)?.status, "passed", gate);
    }
    // The same results on disk beside the SBOMs, without the registry token.
    const file = path.join(evidenceDirOf(shared.stack.stack), "gate-results.json");
    const text = fs.readFileSync(file, "utf8");
    // On disk as judged; the export also names the manifest list it published.
    assert.deepEqual(
      { ...(JSON.parse(text) as { gateResults: GateResults }).gateResults, digest: outputs.digest },
      results,
    );
    const auth = localRegistryAuth();
    assert.deepEqual(
      findSecret(auth.password, auth.username, [{ name: file, text }]),
      [],
      "registry token in gate-results.json",
    );
  });

  it("`npm run evidence` standalone on the published image prints the same gate results the stack exports", async () => {
    const { password, username } = localRegistryAuth();
    const r = await run(
      "npm",
      [
        "run",
        "-s",
        "evidence",
        "--",
        "--image",
        outputs.imageRef,
        "--username",
        username,
        "--db-repository",
        String(localStackConfig()["image-factory:vulnerabilityDb"]),
        "--coverage-image",
        `${outputs.imageName}:sha-${shared.sha.slice(0, 7)}-coverage`,
        "--dockerfile",
        path.join(shared.appDir, "Dockerfile"),
        "--source-revision",
        shared.sha,
        "--out",
        path.join(shared.stack.dir, "cli-evidence"),
      ],
      {
        cwd: REPO_ROOT,
        env: {
          IMAGE_FACTORY_REGISTRY_TOKEN: password,
          SSL_CERT_FILE: path.join(shared.stack.localDir, "ca-bundle.pem"),
          NODE_EXTRA_CA_CERTS: path.join(shared.stack.localDir, "ca-bundle.pem"),
        },
      },
    );
    assert.equal(r.code, 0, tail(r.stderr, 20));
    const cli = (
      JSON.parse(r.stdout) as {
        gateResults: GateResults & { platformDigests: Record<string, string> };
      }
    ).gateResults;
    const pick = (g: GateResults): Array<Record<string, unknown>> =>
      g.checks.map((c) => ({
        gate: c.gate,
        status: c.status,
        measured: c.measured,
        limit: c.limit,
      }));
    assert.deepEqual(pick(cli), pick(outputs.gateResults));
    assert.deepEqual(cli.platformDigests, outputs.platformDigests);
    assert.deepEqual(
      findSecret(password, username, [
        { name: "evidence CLI output", text: `${r.stdout}\n${r.stderr}` },
      ]),
      [],
    );
  });

  it("the evidence run removed the images it pulled for Dive from the engine", async () => {
    // The stack's evidence pulled each platform image from the stack's registry by digest;
    // nothing else in the tests pulls from that registry address for this repository.
    const left = imagesOf(await engineImages(), `${STACK_REGISTRY}/${shared.repository}`);
    assert.deepEqual(left, [], "images the evidence run pulled are still in the engine");
  });

  it("the evidence runner's pull removes only what it added: an image already in the engine stays", async function () {
    const ref = `${LOCAL_REGISTRY}/${shared.repository}@${outputs.platformDigests["linux/amd64"]}`;
    const auth = { registry: LOCAL_REGISTRY, ...localRegistryAuth(), insecure: true };
    const archive = path.join(shared.stack.dir, "cleanup-check.tar");
    const has = async (): Promise<boolean> =>
      (await run(DOCKER, ["image", "inspect", ref])).code === 0;
    assert.equal(
      await has(),
      false,
      `${ref} is already in the engine: another test left it behind`,
    );
    try {
      // Not there before: the pull adds it and the cleanup takes it away again.
      const fresh = await pullAndSave({ imageRef: ref, archivePath: archive, auth });
      assert.equal(fresh.added, true);
      assert.equal(await has(), true);
      assert.deepEqual(await removePulledImage({ imageRef: ref, added: fresh.added }), {
        removed: true,
      });
      assert.equal(await has(), false, "the image the runner pulled is still in the engine");
      // Already there (someone else pulled it): the runner leaves it where it was.
      await pullImage(ref, "linux/amd64");
      const existing = await pullAndSave({ imageRef: ref, archivePath: archive, auth });
      assert.equal(existing.added, false);
      assert.deepEqual(await removePulledImage({ imageRef: ref, added: existing.added }), {
        removed: false,
      });
      assert.equal(await has(), true, "the runner removed an image it had not added");
    } finally {
      fs.rmSync(archive, { force: true });
      await removeImage(ref);
    }
  });

  it("fails `pulumi up` at the scan and lint gates on a Dockerfile with a planted AWS key and a root user", async function () {
    // Built at run time so the repository itself never carries a key-shaped string.
    const key = `AKIA${"QX7ZJ2K4M9R3T8VW".split("").reverse().join("")}`;
    const s = new TestStack(`planted-${shared.stack.stack}`, {});
    stacks.push(s);
    const appDir = copyApp(path.join(s.dir, "app"));
    const dockerfile = path.join(appDir, "Dockerfile");
    fs.appendFileSync(dockerfile, `\nENV AWS_ACCESS_KEY_ID=${key}\nUSER root\n`);

    // The tools on their own first, so a failure below points at the gate wiring, not the tool.
    const lint = await runHadolint({ dockerfile });
    assert.ok(
      lint.findings.some((f) => f.id === "DL3002"),
      `hadolint did not flag the root user: ${JSON.stringify(lint.findings)}`,
    );
    const scan = await runTrivyConfig({ dir: appDir, reportPath: path.join(s.dir, "trivy.json") });
    assert.ok(
      scan.secrets.some((f) => f.id === "aws-access-key-id"),
      `trivy found no AWS key: ${JSON.stringify(scan.secrets)}`,
    );

    // One platform is enough for the gates; its layers come from BuildKit's cache of the shared build.
    const repository = `${shared.repository}-planted`;
    s.setConfig(
      factoryStackConfig({ repository, appDir, sha: shared.sha, platforms: ["linux/amd64"] }),
    );
    const r = await s.local(["up"]);
    const output = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(
      r.code,
      0,
      `pulumi up passed with a planted key and a root user:\n${tail(output, 30)}`,
    );
    assert.match(output, /quality gates? failed/, tail(output, 40));
    assert.match(
      output,
      /gate dockerfileLint failed: measured \d+ findings, limit 0 findings .*DL3002/,
      tail(output, 40),
    );
    assert.match(
      output,
      /gate secrets failed: measured 1 findings, limit 0 findings .*aws-access-key-id/,
      tail(output, 40),
    );
    assert.match(output, /gate misconfigurations failed: .*(root|DS-?0*02)/i, tail(output, 40));
    assert.match(output, /gate imageSecrets\[linux\/amd64\] failed/, tail(output, 40));
    // The build log may echo the Dockerfile; the gate messages never repeat the secret.
    const gateLines = output.split("\n").filter((l) => /gate \S+ failed/.test(l));
    assert.ok(gateLines.length >= 4, tail(output, 40));
    assert.ok(
      gateLines.every((l) => !l.includes(key)),
      "a gate message repeats the secret",
    );
    const results = JSON.parse(
      fs.readFileSync(path.join(evidenceDirOf(s.stack), "gate-results.json"), "utf8"),
    ) as { gateResults: GateResults };
    assert.equal(results.gateResults.passed, false);
    assert.ok(
      results.gateResults.failed.includes("secrets"),
      JSON.stringify(results.gateResults.failed),
    );
    // A failing run cleans up after Dive too.
    assert.deepEqual(
      imagesOf(await engineImages(), `${STACK_REGISTRY}/${repository}`),
      [],
      "the failing evidence run left its pulled image in the engine",
    );
  });

  describe("SupplyChainEvidence alone through the real Pulumi engine, over the shared stack's images", function () {
    // A program with only the evidence resource: the size gate needs a limit the factory's
    // stack must not be reconfigured with, and rebuilding images to change one number would
    // only slow the proof down. The digests are the ones the shared stack pushed.
    let project: string;
    let env: NodeJS.ProcessEnv;
    const binDir = path.join(cacheDir(), "bin");
    const imageName = (): string => `${LOCAL_REGISTRY}/${shared.repository}`;

    async function pulumiCli(args: string[]): Promise<{ code: number; output: string }> {
      const r = await run(path.join(binDir, "pulumi"), [...args, "--non-interactive"], {
        cwd: project,
        env,
      });
      return { code: r.code, output: `${r.stdout}\n${r.stderr}` };
    }

    before(async function () {
      this.timeout(600_000);
      const auth = localRegistryAuth();
      ({ dir: project, env } = scratchPulumiProject("sc-e2e"));
      env.IMAGE_FACTORY_PROJECT_DIR = project;
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
          `  contextDir: ${JSON.stringify(shared.appDir)},`,
          `  sourceRevision: ${JSON.stringify(shared.sha)},`,
          // No coverage image in this evidence-only program: those checks are waived, with the reason.
          `  coverageImage: "",`,
          `  vulnerabilityDb: ${JSON.stringify(String(localStackConfig()["image-factory:vulnerabilityDb"]))},`,
          `  gates: { ...${JSON.stringify(DEFAULT_GATES)}, maxImageSizeMb: cfg.requireNumber("maxImageSizeMb"), waive: { coverage: "evidence-only program, no build", branchCoverage: "evidence-only program, no build", functionCoverage: "evidence-only program, no build" } },`,
          `  outputDir: ".local/evidence/e2e",`,
          `});`,
          `export const sbomLocations = ev.sbomLocations;`,
          `export const gateResults = ev.gateResults;`,
          "",
        ].join("\n"),
      );
      const init = await pulumiCli(["stack", "init", "e2e"]);
      assert.equal(init.code, 0, init.output);
      const settings: Array<[string, string]> = [
        ["e2e:imageName", imageName()],
        ["e2e:registryUsername", auth.username],
        ["e2e:maxImageSizeMb", "50"],
        ["image-factory:platforms", JSON.stringify(["linux/amd64", "linux/arm64"])],
      ];
      for (const [key, value] of settings) {
        const r = await pulumiCli(["config", "set", "--stack", "e2e", key, value]);
        assert.equal(r.code, 0, r.output);
      }
      const digest = outputs.platformDigests["linux/amd64"];
      assert.match(
        digest ?? "",
        /^sha256:[0-9a-f]{64}$/,
        `the shared stack exports no linux/amd64 digest: ${JSON.stringify(outputs.platformDigests)}`,
      );
      const set = await pulumiCli([
        "config",
        "set",
        "--stack",
        "e2e",
        "--path",
        `e2e:platformDigests["linux/amd64"]`,
        digest,
      ]);
      assert.equal(set.code, 0, set.output);
      // The secret goes in through stdin, never on a command line.
      const secret = await run(
        path.join(binDir, "pulumi"),
        ["config", "set", "--stack", "e2e", "--secret", "e2e:registryToken", "--non-interactive"],
        {
          cwd: project,
          env,
          input: auth.password,
        },
      );
      assert.equal(secret.code, 0, `${secret.stdout}\n${secret.stderr}`);
    });

    after(() => {
      if (project !== undefined) fs.rmSync(project, { recursive: true, force: true });
    });

    it("a size limit below the image's size fails `pulumi up` naming the gate, the measured value and the limit; the engine keeps no pulled image", async () => {
      const before = await engineImages();
      const up = await pulumiCli(["up", "--stack", "e2e", "--yes", "--skip-preview"]);
      assert.notEqual(up.code, 0, "pulumi up passed with a size gate below the image size");
      assert.match(
        up.output,
        /gate imageSize\[linux\/amd64\] failed: measured \d+(\.\d+)? MB, limit 50 MB/,
        tail(up.output, 30),
      );
      assert.match(up.output, /1 quality gate failed/, tail(up.output, 30));
      const auth = localRegistryAuth();
      assert.deepEqual(
        findSecret(auth.password, auth.username, [{ name: "pulumi up output", text: up.output }]),
        [],
        "registry token in the pulumi up output",
      );

      // The run pulled linux/amd64 for Dive and must have removed it again, and nothing else.
      const after = await engineImages();
      const afterIds = new Set(after.map((i) => i.id));
      const gone = before.filter((i) => !afterIds.has(i.id));
      assert.deepEqual(gone, [], "the evidence run removed images it had not added");
      const evidenceRepo = imageName();
      assert.deepEqual(
        imagesOf(after, evidenceRepo).map((i) => i.id),
        imagesOf(before, evidenceRepo).map((i) => i.id),
        "the image list grew by the image the evidence run pulled",
      );
      const beforeIds = new Set(before.map((i) => i.id));
      const added = after.filter((i) => !beforeIds.has(i.id));
      console.log(
        `      engine images: ${before.length} before, ${after.length} after (${added.length} new, none of ${evidenceRepo})`,
      );
    });

    it("the policy pack refuses a preview that builds none of the configured platforms, and passes a promotion stack", async () => {
      const withPolicy = [
        "preview",
        "--stack",
        "e2e",
        "--policy-pack",
        path.join(REPO_ROOT, "policy"),
      ];
      const bad = await pulumiCli(withPolicy);
      assert.notEqual(bad.code, 0, bad.output);
      assert.match(bad.output, /every-platform-built/);
      assert.match(
        bad.output,
        /configured platforms linux\/amd64, linux\/arm64 not built by any docker-build Image/,
      );
      const promote = await pulumiCli([
        "config",
        "set",
        "--stack",
        "e2e",
        "image-factory:promoteFrom",
        "dev",
      ]);
      assert.equal(promote.code, 0, promote.output);
      const good = await pulumiCli(withPolicy);
      assert.doesNotMatch(good.output, /mandatory/);
      assert.match(good.output, /image-factory-policy/);
    });
  });

  it("the policy pack passes a real preview of the shared local stack (scripts/local.sh)", async () => {
    const r = await shared.stack.local([
      "preview",
      "--policy-pack",
      path.join(REPO_ROOT, "policy"),
    ]);
    const output = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.code, 0, tail(output, 60));
    assert.match(output, /✅ image-factory-policy@v[0-9.]+/);
    assert.doesNotMatch(output, /\[mandatory\]/);
  });
});
