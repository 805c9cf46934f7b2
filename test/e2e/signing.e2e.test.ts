// Signing and verified promotion on real stacks: one source stack build (real `pulumi up` on the
// local BuildKit, one platform) signs and attests its index and platform image with the stack's own
// key, and a consumer verifies it with the real cosign CLI and the exported public key, exactly as
// docs/signing.md says. Then promoting stacks (real `pulumi up`, same file backend) refuse what must
// not ship, each naming the missing or bad piece, with no release tag moving:
//   - an unsigned digest, a digest whose signature is from another key, a tag re-pointed to another
//     image after signing, a gates attestation made for another digest, and provenance of another
//     commit than the one being released.
// Source stacks with crafted outputs (pointing at those images) are made with `pulumi stack import`
// of a checkpoint holding only the stack's outputs: no program, no build.
import { strict as assert } from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { attest, sign } from "../../evidence/signing/cosign";
import { newRunId, REPO_ROOT, run, tail } from "./lib/exec";
import { type PublishedOutputs, factoryStackConfig } from "./lib/factoryStack";
import {
  STACK_REGISTRY,
  SharedBackend,
  bootstrapOnce,
  copyApp,
  headSha,
  localStackConfig,
  requireLocalStackTools,
  TestStack,
  toolPath,
} from "./lib/pulumiStack";
import { cacheDir, RegistryClient } from "./lib/registry";

interface SigningExport {
  mode: string;
  publicKey: string;
  signatures: Record<string, string>;
}

interface StackOutputs extends PublishedOutputs {
  release: { ref: string; sha: string; version: string; prerelease: boolean };
  signing: SigningExport;
  [k: string]: unknown;
}

interface Statement {
  predicateType: string;
  subject: Array<{ digest: Record<string, string> }>;
  predicate: Record<string, unknown>;
}

const GATES_TYPE = "https://image-factory.dev/gates/v1";

/** A value from `pulumi stack export --show-secrets`: secrets come as `{<sig>: …, plaintext: "<json>"}`. */
function plain(v: unknown): unknown {
  if (typeof v === "object" && v !== null && "plaintext" in v)
    return JSON.parse(String((v as { plaintext: unknown }).plaintext)) as unknown;
  return v;
}
const RELEASE_TAGS = ["1.4.2", "1.4", "1", "latest"];

describe("signing: `pulumi up` signs and attests; promotion verifies before any tag moves", function () {
  this.timeout(90 * 60_000);
  const runId = newRunId();
  const repository = `image-factory/e2e-sign-${runId}`;
  const imageName = `${STACK_REGISTRY}/${repository}`;
  let backend: SharedBackend;
  let source: TestStack;
  let out: StackOutputs;
  let registry: RegistryClient;
  let sha: string;
  let work: string;
  let cosignEnv: NodeJS.ProcessEnv;
  let password: string;
  let platform: string;
  let platformDigest: string;
  let upSeconds: number;
  const timings: Record<string, number> = {};

  const stackIn = (name: string, config: Record<string, unknown>): TestStack =>
    backend.stack(name, config);

  const promotingConfig = (
    from: string,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    ...localStackConfig(),
    "image-factory:imageName": imageName,
    "image-factory:promoteFrom": from,
    "image-factory:gitRef": "refs/tags/v1.4.2",
    "image-factory:gitSha": sha,
    ...extra,
  });

  type StateResource = {
    type: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
  };
  /** The source stack's resource of `type`, secrets shown (`pulumi stack export --show-secrets`). */
  async function sourceResource(type: string): Promise<StateResource | undefined> {
    const state = JSON.parse(
      (await source.localOk(["pulumi", "stack", "export", "--show-secrets"])).stdout,
    ) as { deployment: { resources: StateResource[] } };
    return state.deployment.resources.find((r) => r.type === type);
  }

  /** The source stack's signing key as its state holds it. */
  async function sourcePrivateKey(): Promise<string> {
    const keyPair = await sourceResource("pulumi-nodejs:dynamic/signing:EcdsaKeyPair");
    return String(plain(keyPair?.outputs?.privateKeyPem) ?? "");
  }

  /** The real cosign CLI as a consumer runs it: registry credentials in a Docker config, the local CA trusted. */
  async function cosign(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await run(toolPath("cosign"), args, { env: cosignEnv, timeoutMs: 300_000 });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  async function craneOk(args: string[]): Promise<string> {
    const r = await run(toolPath("crane"), args, { env: cosignEnv, timeoutMs: 300_000 });
    if (r.code !== 0)
      throw new Error(`crane ${args.join(" ")} failed (exit ${r.code}): ${tail(r.stderr)}`);
    return r.stdout.trim();
  }

  /** `cosign verify-attestation` with the exported key, decoded to in-toto statements. */
  async function attestations(ref: string, type: string, keyFile: string): Promise<Statement[]> {
    const r = await cosign([
      "verify-attestation",
      "--key",
      keyFile,
      "--insecure-ignore-tlog",
      "--type",
      type,
      ref,
    ]);
    assert.equal(
      r.code,
      0,
      `cosign verify-attestation --type ${type} ${ref} failed: ${tail(r.stderr)}`,
    );
    return r.stdout
      .split("\n")
      .filter((l) => l.trim().startsWith("{"))
      .map(
        (l) =>
          JSON.parse(
            Buffer.from((JSON.parse(l) as { payload: string }).payload, "base64").toString("utf8"),
          ) as Statement,
      );
  }

  /** A stack in the shared backend whose only content is `outputs` (`pulumi stack import`). */
  async function craftedSource(name: string, outputs: Record<string, unknown>): Promise<TestStack> {
    const s = stackIn(name, promotingConfig("nowhere"));
    await s.localOk(["pulumi", "stack", "ls"]);
    const exported = JSON.parse((await s.localOk(["pulumi", "stack", "export"])).stdout) as {
      deployment: Record<string, unknown>;
    };
    exported.deployment.resources = [
      {
        urn: `urn:pulumi:${name}::image-factory::pulumi:pulumi:Stack::image-factory-${name}`,
        custom: false,
        type: "pulumi:pulumi:Stack",
        outputs,
      },
    ];
    const file = path.join(s.dir, "checkpoint.json");
    fs.writeFileSync(file, JSON.stringify(exported));
    await s.localOk(["pulumi", "stack", "import", "--file", file]);
    return s;
  }

  /** A new manifest list (new digest) over existing manifests, pushed without any signature. */
  async function newIndex(
    tag: string,
    manifests: string[],
    dockerMediaTypes = false,
  ): Promise<string> {
    const args = [
      "index",
      "append",
      ...manifests.flatMap((m) => ["-m", m]),
      "-t",
      `${imageName}:${tag}`,
    ];
    await craneOk(dockerMediaTypes ? [...args, "--docker-empty-base"] : args);
    return craneOk(["digest", `${imageName}:${tag}`]);
  }

  /** `pulumi up` of a promoting stack that must be refused: the output names `piece`, no tag moved. */
  async function refused(prod: TestStack, piece: RegExp): Promise<string> {
    const before = await registry.tagDigests(repository);
    const started = Date.now();
    const r = await prod.local(["up"]);
    timings[`refused ${prod.stack.replace(`-${runId}`, "")}`] = (Date.now() - started) / 1000;
    const output = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(r.code, 0, `pulumi up on ${prod.stack} must be refused:\n${tail(output, 30)}`);
    assert.match(output, piece, tail(output, 40));
    assert.deepEqual(await registry.tagDigests(repository), before, "no tag moved in the registry");
    const state = await prod.exportState();
    assert.deepEqual(
      (state.deployment.resources ?? []).filter((x) => x.type === "docker-build:index:Index"),
      [],
      "no Index was created",
    );
    return output;
  }

  before(async function () {
    await bootstrapOnce();
    requireLocalStackTools();
    for (const t of ["cosign", "crane"]) {
      if (!fs.existsSync(toolPath(t)))
        throw new Error(
          `${t} is not installed in ${path.dirname(toolPath(t))}: run scripts/install-go-tools.sh ${t}`,
        );
    }
    registry = new RegistryClient();
    sha = await headSha();
    backend = new SharedBackend("signing");
    work = path.join(backend.root, "work");
    fs.mkdirSync(path.join(work, "docker"), { recursive: true, mode: 0o700 });
    password = fs.readFileSync(path.join(cacheDir(), "registry", "password"), "utf8").trim();
    fs.writeFileSync(
      path.join(work, "docker", "config.json"),
      JSON.stringify({
        auths: {
          [STACK_REGISTRY]: { auth: Buffer.from(`factory:${password}`).toString("base64") },
        },
      }),
      { mode: 0o600 },
    );
    cosignEnv = {
      DOCKER_CONFIG: path.join(work, "docker"),
      SSL_CERT_FILE: path.join(cacheDir(), "registry-tls", "ca.pem"),
    };

    // The one build: one platform keeps it short; every later stack reuses its image.
    const appDir = copyApp(path.join(backend.root, "app"));
    source = stackIn(
      `sign-src-${runId}`,
      factoryStackConfig({ repository, appDir, sha, platforms: ["linux/amd64"] }),
    );
    const started = Date.now();
    await source.up();
    upSeconds = (Date.now() - started) / 1000;
    out = await source.outputs<StackOutputs>();
    [platform, platformDigest] = Object.entries(out.platformDigests)[0];
    fs.writeFileSync(path.join(work, "factory.pub"), out.signing.publicKey);
  });

  after(function () {
    console.log(`      timings (s): ${JSON.stringify({ sourceUp: upSeconds, ...timings })}`);
    if (backend !== undefined && process.env.IF_E2E_KEEP !== "1") {
      backend.remove();
      fs.rmSync(path.join(REPO_ROOT, ".local", "evidence", `sign-src-${runId}`), {
        recursive: true,
        force: true,
      });
    }
  });

  it("exports signing { mode: key, publicKey, signatures } naming the index and the platform digest", async function () {
    assert.equal(out.signing.mode, "key");
    assert.match(out.signing.publicKey, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.deepEqual(
      Object.keys(out.signing.signatures).sort(),
      [out.digest, platformDigest].sort(),
    );
    for (const [digest, ref] of Object.entries(out.signing.signatures)) {
      assert.match(
        ref,
        new RegExp(`^${imageName.replace(/[.]/g, "\\.")}@sha256:[0-9a-f]{64}$`),
        `signature ref of ${digest}`,
      );
      const manifest = JSON.parse(await craneOk(["manifest", ref])) as {
        artifactType?: string;
        subject?: { digest: string };
      };
      assert.equal(manifest.artifactType, "application/vnd.dev.sigstore.bundle.v0.3+json");
      assert.equal(
        manifest.subject?.digest,
        digest,
        "the signature bundle refers to the digest it signs",
      );
    }
    // How long signing took inside that `pulumi up` (the Tags resource's report).
    const state = JSON.parse((await source.localOk(["pulumi", "stack", "export"])).stdout) as {
      deployment: { resources: Array<{ type: string; outputs?: Record<string, unknown> }> };
    };
    const tags = state.deployment.resources.find(
      (r) => r.type === "pulumi-nodejs:dynamic/publication:Tags",
    );
    const report = tags?.outputs?.signingReport as {
      seconds: number;
      created: string[];
      reused: string[];
    };
    assert.equal(
      report.created.length,
      7,
      `index: signature, gates, provenance, the platform's SBOM; platform: signature, SBOM, provenance: ${JSON.stringify(report)}`,
    );
    timings.signingInUp = report.seconds;
  });

  it("keeps the private key out of the backend in plaintext, and a no-op `pulumi up` signs nothing", async function () {
    const pem = await sourcePrivateKey();
    const body = pem.split("\n")[1];
    assert.match(body, /^[A-Za-z0-9+/]{20,}/);
    const leaks = source.stateFiles().filter((f) => f.text.includes(body));
    assert.deepEqual(
      leaks.map((f) => f.file),
      [],
      "the private key is in the backend only encrypted",
    );

    const fallback = `${imageName}:${out.digest.replace(":", "-")}`;
    const before = await craneOk(["manifest", fallback]);
    const tagsBefore = await registry.tagDigests(repository);
    const started = Date.now();
    const r = await source.up();
    timings.noopUp = (Date.now() - started) / 1000;
    assert.doesNotMatch(
      r.stdout,
      /publication:Tags.*(updat|creat)/i,
      "the Tags resource did not run again",
    );
    assert.equal(await craneOk(["manifest", fallback]), before, "no new signature or attestation");
    assert.deepEqual(await registry.tagDigests(repository), tagsBefore, "no tag moved");
  });

  it("a consumer verifies the index signature with the real cosign CLI and the exported key", async function () {
    const keyFile = path.join(work, "factory.pub");
    const r = await cosign([
      "verify",
      "--key",
      keyFile,
      "--insecure-ignore-tlog",
      "--output",
      "json",
      out.imageRef,
    ]);
    assert.equal(r.code, 0, `cosign verify failed: ${tail(r.stderr)}`);
    const verified = JSON.parse(r.stdout) as Array<{
      critical: { type: string; image: { "docker-manifest-digest": string } };
    }>;
    // `cosign verify` also lists attestations (docs/signing.md pitfall): a real signature is there.
    assert.ok(
      verified.some(
        (v) =>
          v.critical.type === "https://sigstore.dev/cosign/sign/v1" &&
          v.critical.image["docker-manifest-digest"] === out.digest,
      ),
      r.stdout,
    );

    const other = crypto
      .generateKeyPairSync("ec", { namedCurve: "prime256v1" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    fs.writeFileSync(path.join(work, "other.pub"), other);
    const wrong = await cosign([
      "verify",
      "--key",
      path.join(work, "other.pub"),
      "--insecure-ignore-tlog",
      out.imageRef,
    ]);
    assert.notEqual(wrong.code, 0, "another key must not verify the signature");
  });

  it("the gates attestation on the index names the digests it judged", async function () {
    const [st] = await attestations(out.imageRef, GATES_TYPE, path.join(work, "factory.pub"));
    assert.equal(st.predicateType, GATES_TYPE);
    assert.equal(st.subject[0].digest.sha256, out.digest.slice("sha256:".length));
    assert.equal(st.predicate.indexDigest, out.digest);
    assert.deepEqual(st.predicate.platformDigests, out.platformDigests);
    assert.equal(st.predicate.repository, imageName);
    assert.equal(st.predicate.sourceRevision, sha);
    assert.equal(st.predicate.passed, true);
    assert.deepEqual(st.predicate.notRun, []);
  });

  it("SLSA provenance on the index and the platform image names the commit, the base image digest and the builder", async function () {
    const base = "127.0.0.1:5443/image-factory/node-base:22";
    const baseDigest = await craneOk(["digest", "--platform", platform, base]);
    for (const ref of [out.imageRef, `${imageName}@${platformDigest}`]) {
      const [st] = await attestations(ref, "slsaprovenance1", path.join(work, "factory.pub"));
      assert.equal(st.predicateType, "https://slsa.dev/provenance/v1");
      const def = st.predicate.buildDefinition as {
        externalParameters: Record<string, unknown>;
        resolvedDependencies: Array<{ uri: string; digest: Record<string, string> }>;
      };
      assert.equal(def.externalParameters.commit, sha);
      assert.equal(def.externalParameters.ref, "refs/heads/main");
      assert.deepEqual(def.externalParameters.platforms, [platform]);
      assert.match(def.externalParameters.dockerfile as string, /app\/Dockerfile$/);
      const args = def.externalParameters.buildArgs as Record<string, string>;
      assert.equal(args.REVISION, sha);
      assert.match(args.SOURCE_DATE_EPOCH, /^\d+$/);
      assert.ok(
        def.resolvedDependencies.some((d) => d.digest.gitCommit === sha),
        JSON.stringify(def.resolvedDependencies),
      );
      assert.ok(
        def.resolvedDependencies.some(
          (d) =>
            d.uri === `${base}?platform=${platform}` && `sha256:${d.digest.sha256}` === baseDigest,
        ),
        `the base image's ${platform} digest ${baseDigest}: ${JSON.stringify(def.resolvedDependencies)}`,
      );
      const runDetails = st.predicate.runDetails as {
        builder: { id: string; version: { buildkit: string } };
        metadata: { startedOn: string; finishedOn: string };
      };
      assert.equal(runDetails.builder.id, `${source.stack}/image-factory-local`);
      assert.match(runDetails.builder.version.buildkit, /^v\d+\.\d+\.\d+/);
      assert.ok(
        Date.parse(runDetails.metadata.startedOn) <= Date.parse(runDetails.metadata.finishedOn),
      );
    }
  });

  it("the SPDX SBOM attested to the platform image (and to the index, for admission controllers) names the production dependency pino", async function () {
    for (const [ref, digest] of [
      [`${imageName}@${platformDigest}`, platformDigest],
      [out.imageRef, out.digest],
    ]) {
      const [st] = await attestations(ref, "spdxjson", path.join(work, "factory.pub"));
      assert.equal(st.predicateType, "https://spdx.dev/Document");
      assert.equal(st.subject[0].digest.sha256, digest.slice("sha256:".length));
      const packages = st.predicate.packages as Array<{ name: string; versionInfo?: string }>;
      assert.ok(
        packages.some((p) => p.name === "pino" && p.versionInfo === "10.4.0"),
        `${ref}: pino 10.4.0 among ${packages.length} packages`,
      );
    }
  });

  it("the publish step on the same digest for a new tag only verifies: nothing is signed again", async function () {
    const tags = await sourceResource("pulumi-nodejs:dynamic/publication:Tags");
    assert.ok(tags?.inputs !== undefined, "the Tags resource is in the state");
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { registryToken, signingKey, __provider, ...request } = tags.inputs as Record<
      string,
      unknown
    >;
    const file = path.join(work, "publish.json");
    fs.writeFileSync(file, JSON.stringify({ ...request, tags: [`rerun-${runId}`] }), {
      mode: 0o600,
    });
    const referrersBefore = await craneOk([
      "manifest",
      `${imageName}:${out.digest.replace(":", "-")}`,
    ]);
    const started = Date.now();
    const r = await run(
      path.join(REPO_ROOT, "node_modules", ".bin", "ts-node"),
      ["--transpile-only", "evidence/cli.ts", "publish", "--request", file],
      {
        cwd: REPO_ROOT,
        env: {
          IMAGE_FACTORY_REGISTRY_TOKEN: String(plain(registryToken)),
          IMAGE_FACTORY_SIGNING_KEY: String(plain(signingKey)),
          SSL_CERT_FILE: path.join(cacheDir(), "registry-tls", "ca-bundle.pem"),
          NODE_EXTRA_CA_CERTS: path.join(cacheDir(), "registry-tls", "ca.pem"),
        },
        timeoutMs: 600_000,
      },
    );
    timings.publishRerunSameDigest = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, `publish failed: ${tail(r.stderr)}`);
    assert.match(String(plain(signingKey)), /BEGIN PRIVATE KEY/);
    assert.ok(
      !`${r.stdout}${r.stderr}`.includes(String(plain(signingKey)).split("\n")[1]),
      "the private key never shows in the output",
    );
    const result = JSON.parse(r.stdout) as {
      signing: { created: string[]; reused: string[]; seconds: number };
      signatures: Record<string, string>;
    };
    assert.deepEqual(result.signing.created, [], "nothing signed again");
    assert.equal(result.signing.reused.length, 7);
    assert.deepEqual(result.signatures, out.signing.signatures);
    timings.signingVerifyOnly = result.signing.seconds;
    assert.equal(
      await registry.head(repository, `rerun-${runId}`),
      out.digest,
      "the new tag points at the digest",
    );
    assert.equal(
      await craneOk(["manifest", `${imageName}:${out.digest.replace(":", "-")}`]),
      referrersBefore,
      "no new signature or attestation",
    );
  });

  it("a verified promotion publishes the release tags at the source digest and exports what it verified", async function () {
    const prod = stackIn(`prod-${runId}`, promotingConfig(source.stack));
    const started = Date.now();
    await prod.up();
    timings.promotionUp = (Date.now() - started) / 1000;
    const p = await prod.outputs<StackOutputs>();
    assert.equal(p.digest, out.digest);
    for (const t of RELEASE_TAGS)
      assert.equal(await registry.head(repository, t), out.digest, `release tag ${t}`);
    assert.equal(
      p.signing.publicKey,
      out.signing.publicKey,
      "verified with the source's exported key",
    );
    assert.equal(p.signing.signatures[out.digest], out.signing.signatures[out.digest]);
    const state = await prod.exportState();
    assert.ok(
      (state.deployment.resources ?? []).some(
        (x) => x.type === "pulumi-nodejs:dynamic/promotion:Verify",
      ),
      "the Verify resource is in the state",
    );
  });

  it("refuses an unsigned digest, naming the missing signature and attestations", async function () {
    const unsigned = await newIndex(`unsigned-${runId}`, [`${imageName}@${platformDigest}`]);
    assert.notEqual(unsigned, out.digest);
    const src = await craftedSource(`src-unsigned-${runId}`, {
      ...out,
      digest: unsigned,
      imageRef: `${imageName}@${unsigned}`,
    });
    const output = await refused(
      stackIn(`prod-unsigned-${runId}`, promotingConfig(src.stack)),
      new RegExp(`signature on ${unsigned}: no signature on ${unsigned}`),
    );
    assert.match(
      output,
      new RegExp(`gates attestation \\(${GATES_TYPE}\\) on ${unsigned}: no gates attestation`),
    );
    assert.match(
      output,
      new RegExp(
        `provenance \\(https://slsa.dev/provenance/v1\\) on ${unsigned}: no slsaprovenance1 attestation`,
      ),
    );
  });

  it("refuses a digest signed with another key than the one this stack pins (signing.publicKey)", async function () {
    const pinned = crypto
      .generateKeyPairSync("ec", { namedCurve: "prime256v1" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    const prod = stackIn(
      `prod-otherkey-${runId}`,
      promotingConfig(source.stack, {
        "image-factory:signing": { mode: "key", publicKey: pinned },
      }),
    );
    await refused(
      prod,
      new RegExp(
        `signature on ${out.digest}: signature on ${out.digest} does not verify with the given key`,
      ),
    );
  });

  it("refuses a tag re-pointed to another image after signing", async function () {
    // `main` was signed at out.digest; re-point it to a list over the coverage image, then a source
    // that resolved the tag (not the signed digest) offers those bytes.
    const coverage = (await registry.tagDigests(repository))[`sha-${sha.slice(0, 7)}-coverage`];
    assert.match(coverage ?? "", /^sha256:/, "the coverage image exists");
    const other = await newIndex(`other-${runId}`, [`${imageName}@${coverage}`], true);
    await craneOk(["tag", `${imageName}@${other}`, "main"]);
    const repointed = await craneOk(["digest", `${imageName}:main`]);
    assert.equal(repointed, other);
    const src = await craftedSource(`src-repointed-${runId}`, {
      ...out,
      digest: repointed,
      imageRef: `${imageName}@${repointed}`,
    });
    await refused(
      stackIn(`prod-repointed-${runId}`, promotingConfig(src.stack)),
      new RegExp(`signature on ${repointed}: no signature on ${repointed}`),
    );
    // Put `main` back: the signed digest is still what it should name.
    await craneOk(["tag", out.imageRef, "main"]);
  });

  it("refuses a digest whose gates attestation was made for another digest", async function () {
    // Signed with the factory's own key (from the source stack's state), with the source's real
    // provenance, but the gates predicate it carries judged out.digest.
    const privateKeyPem = await sourcePrivateKey();
    assert.match(privateKeyPem, /BEGIN PRIVATE KEY/);
    const copied = await newIndex(
      `copied-gates-${runId}`,
      [`${imageName}@${platformDigest}`],
      true,
    );
    assert.notEqual(copied, out.digest);
    const opts = {
      registry: { address: STACK_REGISTRY, username: "factory", password },
      caBundle: path.join(cacheDir(), "registry-tls", "ca.pem"),
      tempRoot: work,
    };
    const signer = { ...opts, signer: { mode: "key" as const, privateKeyPem } };
    const ref = `${imageName}@${copied}`;
    await sign(ref, signer);
    const [gates] = await attestations(out.imageRef, GATES_TYPE, path.join(work, "factory.pub"));
    const [prov] = await attestations(
      out.imageRef,
      "slsaprovenance1",
      path.join(work, "factory.pub"),
    );
    fs.writeFileSync(path.join(work, "gates.json"), JSON.stringify(gates.predicate));
    fs.writeFileSync(path.join(work, "prov.json"), JSON.stringify(prov.predicate));
    await attest(ref, { predicatePath: path.join(work, "gates.json"), type: "gates" }, signer);
    await attest(
      ref,
      { predicatePath: path.join(work, "prov.json"), type: "slsaprovenance1" },
      signer,
    );
    const src = await craftedSource(`src-copied-${runId}`, {
      ...out,
      digest: copied,
      imageRef: ref,
    });
    const output = await refused(
      stackIn(`prod-copied-${runId}`, promotingConfig(src.stack)),
      new RegExp(
        `gates attestation on ${copied} names indexDigest "${out.digest}": the gates judged another manifest list`,
      ),
    );
    assert.doesNotMatch(
      output,
      /signature on sha256:[0-9a-f]{64}: /,
      "the signature itself verified",
    );
  });

  it("refuses provenance from another commit than the one being released", async function () {
    const released = "0123456789abcdef0123456789abcdef01234567";
    assert.notEqual(released, sha);
    // A source whose outputs claim the released commit (release.sha), while the signed
    // provenance on the bytes names the commit they were built from.
    const src = await craftedSource(`src-commit-${runId}`, {
      ...out,
      release: { ...out.release, sha: released },
    });
    const prod = stackIn(
      `prod-commit-${runId}`,
      promotingConfig(src.stack, { "image-factory:gitSha": released }),
    );
    const output = await refused(
      prod,
      new RegExp(
        `provenance \\(https://slsa.dev/provenance/v1\\) on ${out.digest} names source commit "${sha}", but this release is ${released}`,
      ),
    );
    assert.match(
      output,
      new RegExp(`on ${platformDigest} names source commit "${sha}"`),
      "the platform image's provenance too",
    );
  });
});
