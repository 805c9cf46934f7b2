// The whole program, as `pulumi up` runs it, for the committed dev, local and prod stack configs
// under mocks: resource types and counts, the inputs that matter, the order quarantine → evidence →
// publication, and the export contract.
import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { decodeRawConfig, validateConfig } from "../../components/config";
import type { FactoryOutputs } from "../../components/program";
import {
  fakeDigest,
  installMocks,
  isSecretInput,
  resolve,
  stackConfig,
  unwrapSecret,
  type Harness,
  type Registered,
} from "./harness";

const ROOT = path.resolve(__dirname, "../..");
const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const TOKEN = "ghp_mock_token_value_1234567890";
const EVIDENCE = "pulumi-nodejs:dynamic/supplychain:Evidence";
const SCANS = "pulumi-nodejs:dynamic/supplychain:Scans";
const TAGS = "pulumi-nodejs:dynamic/publication:Tags";
const IMAGE = "docker-build:index:Image";
const INDEX = "docker-build:index:Index";
const VERIFY = "pulumi-nodejs:dynamic/promotion:Verify";
const KEYPAIR = "pulumi-nodejs:dynamic/signing:EcdsaKeyPair";
/** What the mocked key pair answers (the harness answers every other dynamic resource like the
 *  evidence): a real P-256 pair, so the test can look for the private key where it must not be. */
const KEY = (() => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
})();
/** dev's exported key, as prod reads it through the StackReference. */
const DEV_PUBLIC_KEY =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdev\n-----END PUBLIC KEY-----\n";
/** 2025-12-01T10:00:00Z: the commit time SOURCE_DATE_EPOCH is set from. */
const EPOCH = "1764583200";

/** Makes the mock engine answer the key pair with KEY (after the harness recorded it). */
function answerKeyPair(): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as { mocks: pulumi.runtime.Mocks };
  const inner = monitor.mocks.newResource.bind(monitor.mocks);
  monitor.mocks.newResource = (args) => {
    const answer = inner(args);
    if (args.type !== KEYPAIR) return answer;
    const add = (r: { id: string | undefined; state: Record<string, unknown> }) => ({
      ...r,
      state: { ...r.state, ...KEY, publicKeyFingerprintSha256: "f".repeat(64) },
    });
    return answer instanceof Promise ? answer.then(add) : add(answer);
  };
}

/**
 * The registry check registryCredentials makes on `up` (a GET of /v2/), answered here as a registry
 * that accepts the token: the mocks stay off the network whatever this machine can reach.
 */
async function withRegistryAccepting<T>(urls: string[], fn: () => Promise<T>): Promise<T> {
  const real = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL | Request) => {
    urls.push(String(input instanceof Request ? input.url : input));
    return new Response(null, { status: 200 });
  }) as typeof fetch;
  try {
    return await fn();
  } finally {
    globalThis.fetch = real;
  }
}

/** Loads a stack's committed config the way the engine hands it to the program. */
function programConfig(stack: string): Record<string, string> {
  return { ...stackConfig(stack), "image-factory:registryToken": TOKEN };
}

/** validateConfig's context but the stack and environment: no local repository, the token secret. */
const NO_LOCAL_GIT = {
  localGit: () => undefined,
  secretKeys: new Set(["registryToken"]),
  cwd: ROOT,
};

async function runStack(
  stack: string,
  env: Record<string, string>,
  prepare?: (h: Harness) => void,
) {
  const h = await installMocks("image-factory", stack);
  prepare?.(h);
  const raw = decodeRawConfig(programConfig(stack));
  const cfg = validateConfig(raw, { stack, env, ...NO_LOCAL_GIT });
  // Imported after setMocks so resource classes bind to the mocked monitor.
  const { createFactory } = await import("../../components/program");
  const registryRequests: string[] = [];
  const { out, exports } = await withRegistryAccepting(registryRequests, async () => {
    const out: FactoryOutputs = createFactory({
      ...cfg,
      stack,
      registryToken: pulumi.secret(TOKEN),
    });
    const exports = {
      imageName: out.imageName,
      digest: await resolve(out.digest),
      imageRef: await resolve(out.imageRef),
      platformDigests: await resolve(out.platformDigests),
      tags: await resolve(out.tags),
      sbomLocations: await resolve(out.sbomLocations),
      cacheRefs: await resolve(out.cacheRefs),
      buildHosts: out.buildHosts ? await resolve(out.buildHosts) : undefined,
      gateResults: out.gateResults
        ? ((await resolve(out.gateResults)) as Record<string, unknown>)
        : undefined,
      release: out.release,
      signing: out.signing
        ? ((await resolve(out.signing)) as unknown as Record<string, unknown>)
        : undefined,
    };
    return { out, exports };
  });
  return { h, out, exports, registryRequests };
}

/** The per-platform Images (the coverage stage's Image has a `target`). */
const platformImages = (h: Harness): Registered[] =>
  h.byType(IMAGE).filter((i) => i.inputs.target === undefined);
const platformOf = (r: Registered): string => (r.inputs.platforms as string[])[0];
const one = (h: Harness, type: string): Registered => {
  const found = h.resources.filter((r) => r.type === type);
  assert.equal(
    found.length,
    1,
    `expected exactly one ${type}, got ${found.map((r) => r.name).join(", ")}`,
  );
  return found[0];
};

describe("program under mocks: dev stack (build on main)", function () {
  this.timeout(60000);
  let run: Awaited<ReturnType<typeof runStack>>;
  before(async () => {
    run = await runStack(
      "dev",
      { GITHUB_REF: "refs/heads/main", GITHUB_SHA: SHA, SOURCE_DATE_EPOCH: EPOCH },
      (h) => {
        // The evidence takes a while (the scanners run): whatever does not wait for it on purpose
        // would register in the meantime.
        h.delays[EVIDENCE] = 300;
        // The app's tests build the coverage image longest: the scans must not wait for it.
        h.delays[`${IMAGE} image-coverage`] = 300;
        // One platform lands late: the other platforms' scans must not wait for it.
        h.delays[`${IMAGE} image-linux-amd64`] = 150;
      },
    );
  });

  it("registers one Image per platform, tagged sha-<7>-<platform> only, pushed, on the default network, with its cache", () => {
    const images = platformImages(run.h);
    assert.deepEqual(images.map(platformOf).sort(), ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    for (const img of images) {
      const slug = platformOf(img).replace(/\//g, "-");
      assert.equal(img.inputs.push, true);
      // dev builds on remote BuildKit hosts, which refuse host networking.
      assert.equal(img.inputs.network, "default");
      assert.deepEqual(img.inputs.tags, [`ghcr.io/acme/shop-api:sha-1a2b3c4-${slug}`]);
      const cacheTo = img.inputs.cacheTo as Array<{ registry: { ref: string; mode: string } }>;
      assert.equal(cacheTo[0].registry.ref, `ghcr.io/acme/shop-api-buildcache:${slug}`);
      assert.equal(cacheTo[0].registry.mode, "max");
      const cacheFrom = img.inputs.cacheFrom as Array<{ registry: { ref: string } }>;
      assert.equal(cacheFrom[0].registry.ref, `ghcr.io/acme/shop-api-buildcache:${slug}`);
    }
  });

  it("builds the coverage stage once, tagged sha-<7>-coverage, reading the first platform's cache", () => {
    const coverage = run.h.byType(IMAGE).filter((i) => i.inputs.target !== undefined);
    assert.equal(coverage.length, 1);
    const c = coverage[0].inputs;
    assert.equal(c.target, "coverage");
    assert.deepEqual(c.tags, ["ghcr.io/acme/shop-api:sha-1a2b3c4-coverage"]);
    assert.deepEqual(c.platforms, ["linux/amd64"]);
    assert.deepEqual(c.builder, { name: "image-factory-dev-amd64" });
    assert.equal(c.network, "default");
    assert.equal(c.cacheTo, undefined, "the coverage build must not overwrite a platform's cache");
    assert.equal(
      (c.cacheFrom as Array<{ registry: { ref: string } }>)[0].registry.ref,
      "ghcr.io/acme/shop-api-buildcache:linux-amd64",
    );
  });

  it("routes amd64 to the x86 builder and arm64 + arm/v7 to the Graviton builder", () => {
    const builderOf = (p: string) =>
      (platformImages(run.h).find((i) => platformOf(i) === p)?.inputs.builder as { name: string })
        .name;
    assert.equal(builderOf("linux/amd64"), "image-factory-dev-amd64");
    assert.equal(builderOf("linux/arm64"), "image-factory-dev-arm64");
    assert.equal(builderOf("linux/arm/v7"), "image-factory-dev-arm64");
  });

  it("labels and build args come from the git context", () => {
    for (const img of run.h.byType(IMAGE)) {
      const labels = img.inputs.labels as Record<string, string>;
      assert.equal(labels["org.opencontainers.image.revision"], SHA);
      assert.equal(labels["org.opencontainers.image.version"], "main-1a2b3c4");
      assert.equal(labels["org.opencontainers.image.source"], "https://github.com/acme/shop-api");
      const args = img.inputs.buildArgs as Record<string, string>;
      assert.equal(args.REVISION, SHA);
      assert.equal(args.VERSION, "main-1a2b3c4");
      // Reproducible timestamps: the commit time, for every build.
      assert.equal(args.SOURCE_DATE_EPOCH, EPOCH);
    }
  });

  it("signs through a kms key the deploy role may use, created beside (not inside) the image pipeline", () => {
    const key = run.h.byType("aws:kms/key:Key").find((k) => k.name === "signing-key");
    assert.ok(key !== undefined, "a signing-key kms Key");
    assert.equal(key.inputs.customerMasterKeySpec, "ECC_NIST_P256");
    assert.equal(key.inputs.keyUsage, "SIGN_VERIFY");
    const policy = JSON.parse(key.inputs.policy as string) as {
      Statement: Array<{ Sid: string; Principal: { AWS: string | string[] } }>;
    };
    const signers = policy.Statement.find((st) => st.Sid === "SignersSign");
    assert.deepEqual(signers?.Principal.AWS, [
      "arn:aws:iam::123456789012:role/image-factory-deploy",
    ]);
    const component = one(run.h, "image-factory:signing:SigningKey");
    assert.equal(
      component.request?.dependencies.length,
      0,
      "the key waits for nothing of the image pipeline",
    );
    assert.equal(run.h.byType(KEYPAIR).length, 0, "no key pair in kms mode");
  });

  it("hands the publish step the signer, the SBOM files and the provenance facts, with no private key", () => {
    const tags = one(run.h, TAGS);
    const signing = tags.inputs.signing as Record<string, unknown>;
    assert.equal(signing.mode, "kms");
    assert.equal(signing.tlog, false);
    assert.match(signing.keyRef as string, /^awskms:\/\/\/arn:/);
    assert.equal(tags.inputs.signingKey, undefined, "kms mode hands the engine no key material");
    // From the evidence's per-platform results (the harness's evidence reports no platforms).
    assert.deepEqual(signing.sbomPaths, {});
    const prov = signing.provenance as Record<string, unknown>;
    assert.equal(prov.commit, SHA);
    assert.equal(prov.ref, "refs/heads/main");
    assert.equal(prov.repository, "https://github.com/acme/shop-api");
    assert.equal(prov.dockerfile, path.join("app", "Dockerfile"));
    assert.equal(prov.stack, "dev");
    // No baseImage configured on dev: the Dockerfile's pinned default is what the build resolved.
    assert.match(prov.baseImage as string, /^node:22[^@]*@sha256:[0-9a-f]{64}$/);
    assert.deepEqual(prov.builders, {
      "linux/amd64": "image-factory-dev-amd64",
      "linux/arm64": "image-factory-dev-arm64",
      "linux/arm/v7": "image-factory-dev-arm64",
    });
    assert.equal((prov.buildArgs as Record<string, string>).SOURCE_DATE_EPOCH, EPOCH);
    assert.match(prov.startedOn as string, /^\d{4}-\d\d-\d\dT/);
    assert.equal(prov.invocationId, `dev/${prov.startedOn as string}`);
  });

  it("checks the token against the registry before using it", () => {
    assert.ok(run.registryRequests.length > 0, "no registry request was made");
    for (const url of run.registryRequests) assert.equal(url, "https://ghcr.io/v2/");
  });

  it("passes credentials to every Image, the Index, the evidence and the tag writer with the token only as a secret", () => {
    for (const r of [...run.h.byType(IMAGE), ...run.h.byType(INDEX)]) {
      // The SDK marks the smallest enclosing input value secret: the registries list or the registry.
      const reg = r.type === IMAGE ? r.inputs.registries : r.inputs.registry;
      assert.ok(isSecretInput(reg), `${r.name}: registry credentials are not a secret`);
      const unwrapped = unwrapSecret<unknown>(reg);
      const plain = (Array.isArray(unwrapped) ? unwrapped[0] : unwrapped) as {
        address: string;
        username: string;
        password: string;
      };
      assert.deepEqual(
        [plain.address, plain.username, plain.password],
        ["ghcr.io", "acme-ci", TOKEN],
      );
    }
    const platformScans = run.h.byType(SCANS).filter((r) => r.name !== "evidence-scans-context");
    for (const r of [...platformScans, one(run.h, EVIDENCE), one(run.h, TAGS)]) {
      assert.ok(
        isSecretInput(r.inputs.registryToken),
        `${r.name}: the registry token must be a secret input`,
      );
      assert.equal(unwrapSecret<string>(r.inputs.registryToken), TOKEN);
      assert.equal(r.inputs.registryUsername, "acme-ci");
    }
    // The build context is read from disk: that scan is given no registry credentials at all.
    const context = run.h.byType(SCANS).find((r) => r.name === "evidence-scans-context");
    assert.equal(context?.inputs.registryToken, undefined);
    assert.equal(context?.inputs.registryUsername, undefined);
  });

  it("merges the platform images into exactly one Index, under the immutable sha-<40> tag, kept on delete", () => {
    const index = one(run.h, INDEX);
    assert.equal(index.inputs.tag, `ghcr.io/acme/shop-api:sha-${SHA}`);
    const d = run.exports.platformDigests;
    // In platform order, the coverage image not among them.
    assert.deepEqual(index.inputs.sources, [
      `ghcr.io/acme/shop-api:sha-1a2b3c4-linux-amd64@${d["linux/amd64"]}`,
      `ghcr.io/acme/shop-api:sha-1a2b3c4-linux-arm64@${d["linux/arm64"]}`,
      `ghcr.io/acme/shop-api:sha-1a2b3c4-linux-arm-v7@${d["linux/arm/v7"]}`,
    ]);
    assert.equal(index.inputs.push, true);
    assert.equal(
      index.request?.retainOnDelete,
      true,
      "a replaced Index would delete the list by digest",
    );
  });

  it("writes the moving tags (main, edge, sha-<7>) with one Tags resource at the Index's ref and the evidence's results", () => {
    const tags = one(run.h, TAGS);
    assert.deepEqual(tags.inputs.tags, ["main", "edge", "sha-1a2b3c4"]);
    assert.equal(tags.inputs.imageName, "ghcr.io/acme/shop-api");
    assert.equal(tags.inputs.indexRef, `ghcr.io/acme/shop-api:sha-${SHA}@${run.exports.digest}`);
    const gates = tags.inputs.gateResults as Record<string, unknown>;
    assert.equal(gates.imageName, "ghcr.io/acme/shop-api");
    assert.equal(gates.sourceRevision, SHA);
    assert.deepEqual(gates.platformDigests, run.exports.platformDigests);
    assert.deepEqual(gates.notRun, []);
  });

  it("orders quarantine → evidence → publication", () => {
    const evidence = one(run.h, EVIDENCE);
    const publication = one(run.h, "image-factory:publication:Publication");
    const index = one(run.h, INDEX);
    const tags = one(run.h, TAGS);
    const evidenceUrn = evidence.request?.urn;
    assert.equal(
      evidenceUrn,
      "urn:pulumi:dev::image-factory::image-factory:supplychain:SupplyChainEvidence$pulumi-nodejs:dynamic/supplychain:Evidence::evidence-evidence",
    );
    // What the engine is told: the Publication (dependsOn) and the tag writer (its gateResults input)
    // depend on the Evidence resource; the Index and the tag writer are the Publication's children.
    assert.ok(
      publication.request?.dependencies.includes(evidenceUrn),
      `Publication dependencies: ${JSON.stringify(publication.request?.dependencies)}`,
    );
    assert.ok(
      tags.request?.dependencies.includes(evidenceUrn),
      `Tags dependencies: ${JSON.stringify(tags.request?.dependencies)}`,
    );
    assert.equal(index.request?.parent, publication.request?.urn);
    assert.equal(tags.request?.parent, publication.request?.urn);
    // What the program does: with the evidence taking 300 ms, the Index (whose own inputs were
    // ready as soon as the images were) and the tag writer still reach the engine only after the
    // Evidence resource was created. The engine answers a registration once the resource exists,
    // so on `pulumi up` a failing evidence run leaves both unregistered. (This proves the order the
    // program sends; the engine's handling of the failure itself is covered by test/e2e.)
    const at = (event: string): number => {
      const i = run.h.events.indexOf(event);
      assert.ok(i >= 0, `no event "${event}" in ${JSON.stringify(run.h.events)}`);
      return i;
    };
    const evidenceCreated = at(`created ${EVIDENCE} evidence-evidence`);
    for (const slug of ["linux-amd64", "linux-arm64", "linux-arm-v7"]) {
      assert.ok(
        at(`register ${SCANS} evidence-scans-${slug}`) > at(`created ${IMAGE} image-${slug}`),
        `${slug} scanned before its image existed`,
      );
      assert.ok(
        at(`register ${SCANS} evidence-scans-${slug}`) < at(`created ${IMAGE} image-coverage`),
        `${slug}: the scan waited for the coverage image`,
      );
    }
    for (const scan of ["evidence-scans-linux-arm64", "evidence-scans-context"])
      assert.ok(
        at(`register ${SCANS} ${scan}`) < at(`created ${IMAGE} image-linux-amd64`),
        `${scan} waited for another platform's image`,
      );
    assert.ok(
      at(`register ${EVIDENCE} evidence-evidence`) > at(`created ${IMAGE} image-coverage`),
      "judged before the coverage image existed",
    );
    for (const scan of run.h.byType(SCANS))
      assert.ok(
        at(`register ${EVIDENCE} evidence-evidence`) > at(`created ${SCANS} ${scan.name}`),
        `judged before ${scan.name} existed`,
      );
    assert.ok(
      at(`register ${INDEX} publish-index`) > evidenceCreated,
      "the Index was registered before the evidence was created",
    );
    assert.ok(
      at(`register ${TAGS} publish-tags`) > evidenceCreated,
      "the tags were registered before the evidence was created",
    );
    assert.ok(
      at(`register ${TAGS} publish-tags`) > at(`created ${INDEX} publish-index`),
      "the tags were registered before the Index existed",
    );
  });

  it("declares the GHCR package settings on GitHub", () => {
    const vars = run.h
      .byType("github:index/actionsVariable:ActionsVariable")
      .map((v) => v.inputs.variableName)
      .sort();
    assert.ok(
      vars.includes("IMAGE_NAME") && vars.includes("GHCR_UNTAGGED_RETENTION_DAYS"),
      vars.join(","),
    );
    const env = run.h.byType("github:index/repositoryEnvironment:RepositoryEnvironment");
    assert.equal(env.length, 1);
    assert.equal(env[0].inputs.environment, "production");
    const reviewers = env[0].inputs.reviewers as Array<{ teams: number[] }>;
    assert.deepEqual(reviewers[0].teams, [2002]);
    const policy = run.h.byType(
      "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
    );
    assert.equal(policy[0].inputs.tagPattern, "v*");
  });

  it("exports the contract: the Index's digest, every tag, results bound to that digest", () => {
    const e = run.exports;
    const index = one(run.h, INDEX);
    assert.equal(e.imageName, "ghcr.io/acme/shop-api");
    // The mock Index digest of these sources (harness): what the registry holds under sha-<40>.
    assert.equal(e.digest, fakeDigest(`index:${(index.inputs.sources as string[]).join(",")}`));
    assert.equal(e.imageRef, `ghcr.io/acme/shop-api@${e.digest}`);
    assert.deepEqual(Object.keys(e.platformDigests).sort(), [
      "linux/amd64",
      "linux/arm/v7",
      "linux/arm64",
    ]);
    for (const d of Object.values(e.platformDigests)) assert.match(d, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(e.tags, [
      "ghcr.io/acme/shop-api:main",
      "ghcr.io/acme/shop-api:edge",
      "ghcr.io/acme/shop-api:sha-1a2b3c4",
      `ghcr.io/acme/shop-api:sha-${SHA}`,
    ]);
    assert.deepEqual(e.cacheRefs, {
      "linux/amd64": "ghcr.io/acme/shop-api-buildcache:linux-amd64",
      "linux/arm64": "ghcr.io/acme/shop-api-buildcache:linux-arm64",
      "linux/arm/v7": "ghcr.io/acme/shop-api-buildcache:linux-arm-v7",
    });
    const g = e.gateResults ?? {};
    assert.equal(g.digest, e.digest);
    assert.equal(g.imageName, "ghcr.io/acme/shop-api");
    assert.equal(g.sourceRevision, SHA);
    assert.deepEqual(g.platformDigests, e.platformDigests);
    assert.deepEqual(e.release, {
      ref: "refs/heads/main",
      sha: SHA,
      version: "main-1a2b3c4",
      prerelease: false,
    });
  });

  it("provisions one native BuildKit host per architecture and exports their endpoints", () => {
    const instances = run.h.byType("aws:ec2/instance:Instance");
    assert.equal(instances.length, 2);
    assert.deepEqual(Object.keys(run.exports.buildHosts ?? {}).sort(), ["amd64", "arm64"]);
    for (const ep of Object.values(run.exports.buildHosts ?? {}))
      assert.match(ep, /^tcp:\/\/[^:]+:1234$/);
    const types = instances.map((i) => i.inputs.instanceType).sort();
    assert.deepEqual(types, ["c7g.xlarge", "c7i.xlarge"]);
  });

  it("hands CI the builder TLS material as one secret export", async () => {
    const tls = run.out.builderTls;
    assert.ok(tls !== undefined);
    // The whole top-level value is secret (tools only honour that); each part is then secret too.
    assert.equal(await pulumi.isSecret(tls), true);
    const plain = await resolve(tls);
    assert.deepEqual(Object.keys(plain).sort(), ["caCertPem", "clientCertPem", "clientKeyPem"]);
    assert.match(plain.caCertPem, /BEGIN CERTIFICATE/);
    assert.match(plain.clientCertPem, /BEGIN CERTIFICATE/);
    assert.match(plain.clientKeyPem, /BEGIN PRIVATE KEY/);
  });

  it("collects supply-chain evidence for every pushed platform digest and the coverage image", () => {
    const evidence = one(run.h, EVIDENCE);
    assert.deepEqual(evidence.inputs.platformDigests, run.exports.platformDigests);
    assert.equal(evidence.inputs.sourceRevision, SHA);
    assert.match(
      evidence.inputs.coverageImage as string,
      /^ghcr\.io\/acme\/shop-api:sha-1a2b3c4-coverage@sha256:[0-9a-f]{64}$/,
    );
    assert.equal(evidence.inputs.sbomStore, "oci");
    // dev takes Trivy's public DB: no vulnerabilityDb set.
    assert.deepEqual(evidence.inputs.vulnDb, {});
    assert.deepEqual(Object.keys(run.exports.sbomLocations).sort(), [
      "linux/amd64",
      "linux/arm/v7",
      "linux/arm64",
    ]);
  });

  it("scans each platform digest on its own and the build context once, without the coverage image; judges what was scanned", () => {
    const scans = run.h.byType(SCANS);
    const evidence = one(run.h, EVIDENCE);
    const byName = Object.fromEntries(scans.map((r) => [r.name, r]));
    assert.deepEqual(Object.keys(byName).sort(), [
      "evidence-scans-context",
      "evidence-scans-linux-amd64",
      "evidence-scans-linux-arm-v7",
      "evidence-scans-linux-arm64",
    ]);
    const d = run.exports.platformDigests;
    for (const p of Object.keys(d)) {
      const scan = byName[`evidence-scans-${p.replace(/\//g, "-")}`];
      assert.deepEqual(scan.inputs.platformDigests, { [p]: d[p] });
      assert.equal(scan.inputs.contextChecks, false);
      // An image is its digest: an edit of the context alone does not rescan it.
      assert.equal(scan.inputs.contentHash, "");
    }
    const context = byName["evidence-scans-context"];
    assert.deepEqual(context.inputs.platformDigests, {});
    assert.equal(context.inputs.contextChecks, true);
    assert.equal(context.inputs.contentHash, evidence.inputs.contentHash);
    for (const scan of scans) {
      assert.equal(scan.inputs.coverageImage, undefined);
      assert.equal(scan.inputs.sourceRevision, undefined);
      // Only Dive's own limits: a waiver or a coverage limit is judged again, never rescanned.
      assert.deepEqual(Object.keys(scan.inputs.gates as object).sort(), [
        "maxWastedMb",
        "minEfficiency",
      ]);
      for (const k of ["imageName", "sbomStore", "vulnDb", "dockerfile", "contextDir", "outputDir"])
        assert.deepEqual(scan.inputs[k], evidence.inputs[k], `${scan.name} ${k}`);
      assert.equal(scan.request?.parent, evidence.request?.parent);
      assert.ok(
        evidence.request?.dependencies.includes(scan.request?.urn ?? ""),
        `Evidence dependencies: ${JSON.stringify(evidence.request?.dependencies)}`,
      );
    }
  });

  it("never exports the token", () => {
    assert.ok(!JSON.stringify(run.exports).includes(TOKEN));
  });

  it("exports signing: the kms key and the signatures the publish step made", () => {
    const s = run.exports.signing ?? {};
    assert.equal(s.mode, "kms");
    assert.match(s.keyRef as string, /^awskms:\/\/\/arn:/);
    assert.equal(s.alias, "alias/image-factory-dev-signing");
    assert.deepEqual(s.signatures, {});
  });
});

describe("program under mocks: local stack (local BuildKit builder)", function () {
  this.timeout(60000);
  let run: Awaited<ReturnType<typeof runStack>>;
  before(async () => {
    run = await runStack("local", { GITHUB_REF: "refs/heads/main", GITHUB_SHA: SHA }, () =>
      answerKeyPair(),
    );
  });

  it("signs with the stack's own key pair: the private key reaches the publish step only as a secret input", () => {
    assert.equal(run.h.byType("aws:kms/key:Key").length, 0);
    one(run.h, KEYPAIR);
    const tags = one(run.h, TAGS);
    assert.ok(isSecretInput(tags.inputs.signingKey), "the private key must be a secret input");
    assert.equal(unwrapSecret<string>(tags.inputs.signingKey), KEY.privateKeyPem);
    const signing = tags.inputs.signing as Record<string, unknown>;
    assert.equal(signing.mode, "key");
    assert.equal(signing.publicKeyPem, KEY.publicKeyPem);
    assert.ok(!JSON.stringify(signing).includes("PRIVATE KEY"), "no private key in the request");
    const prov = signing.provenance as Record<string, unknown>;
    assert.equal(prov.baseImage, "127.0.0.1:5443/image-factory/node-base:22");
    assert.deepEqual(Object.values(prov.builders as Record<string, string>), [
      "image-factory-local",
      "image-factory-local",
      "image-factory-local",
    ]);
  });

  it("exports signing { mode: key, publicKey, signatures } and never the private key", () => {
    assert.deepEqual(run.exports.signing, {
      mode: "key",
      publicKey: KEY.publicKeyPem,
      signatures: {},
    });
    assert.ok(!JSON.stringify(run.exports).includes(KEY.privateKeyPem.split("\n")[1]));
  });

  it("builds every image on the local builder with the default network (the daemon refuses host, like the hosts)", () => {
    const images = run.h.byType(IMAGE);
    assert.equal(images.length, 4);
    for (const img of images) {
      assert.equal(img.inputs.network, "default", `${img.name}`);
      assert.deepEqual(img.inputs.builder, { name: "image-factory-local" });
    }
    assert.equal(run.h.byType("aws:ec2/instance:Instance").length, 0);
  });

  it("publishes one Index in the local registry and hands the evidence the offline vulnerability DB", () => {
    assert.equal(one(run.h, INDEX).inputs.tag, `127.0.0.1:5443/image-factory/shop-api:sha-${SHA}`);
    assert.deepEqual(one(run.h, TAGS).inputs.tags, ["main", "edge", "sha-1a2b3c4"]);
    const evidence = one(run.h, EVIDENCE);
    assert.deepEqual(evidence.inputs.vulnDb, {
      repository: "127.0.0.1:5443/image-factory/trivy-db:2",
    });
    assert.equal(evidence.inputs.sbomStore, "file");
    assert.equal(evidence.inputs.outputDir, path.join(".local", "evidence", "local"));
  });
});

/** What the dev stack exports after a passed run, as the prod stack reads it. */
function devExports(devDigest: string): Record<string, unknown> {
  const platformDigests = {
    "linux/amd64": fakeDigest("a"),
    "linux/arm64": fakeDigest("b"),
    "linux/arm/v7": fakeDigest("c"),
  };
  return {
    imageName: "ghcr.io/acme/shop-api",
    digest: devDigest,
    imageRef: `ghcr.io/acme/shop-api@${devDigest}`,
    platformDigests,
    sbomLocations: { "linux/amd64": "oci://ghcr.io/acme/shop-api@sha256:a#sbom" },
    gateResults: {
      passed: true,
      checks: [
        {
          gate: "imageSize[linux/amd64]",
          configKey: "gates.maxImageSizeMb",
          measured: 120,
          limit: 500,
          unit: "MB",
          status: "passed",
          passed: true,
          detail: "",
        },
        {
          gate: "coverage",
          configKey: "gates.minCoverage",
          measured: 91,
          limit: 80,
          unit: "%",
          status: "passed",
          passed: true,
          detail: "",
        },
      ],
      failed: [],
      notRun: [],
      waived: {},
      tools: {},
      imageName: "ghcr.io/acme/shop-api",
      digest: devDigest,
      platformDigests,
      sourceRevision: SHA,
    },
    release: { ref: "refs/heads/main", sha: SHA, version: "main-1a2b3c4", prerelease: false },
    signing: {
      mode: "kms",
      keyRef: "awskms:///arn:aws:kms:eu-west-1:123456789012:key/dev",
      publicKey: DEV_PUBLIC_KEY,
      signatures: {},
    },
  };
}

describe("program under mocks: prod stack (promotion by digest on a release tag)", function () {
  this.timeout(60000);
  const devDigest = fakeDigest("dev-index");
  let run: Awaited<ReturnType<typeof runStack>>;
  before(async () => {
    run = await runStack("prod", { GITHUB_REF: "refs/tags/v1.4.2", GITHUB_SHA: SHA }, (h) => {
      h.stackOutputs["acme/image-factory/dev"] = devExports(devDigest);
      // Verification takes a while (cosign on the registry): no Index may start meanwhile.
      h.delays[VERIFY] = 300;
    });
  });

  it("verifies the dev digest on the registry with dev's exported key, before any Index exists", () => {
    const verify = one(run.h, VERIFY);
    assert.equal(verify.inputs.imageName, "ghcr.io/acme/shop-api");
    assert.equal(verify.inputs.digest, devDigest);
    assert.equal(verify.inputs.expectedRevision, SHA);
    assert.deepEqual(verify.inputs.platformDigests, devExports(devDigest).platformDigests);
    assert.deepEqual(verify.inputs.trust, { publicKeyPem: DEV_PUBLIC_KEY });
    assert.equal((verify.inputs.gates as Record<string, unknown>).maxImageSizeMb, 500);
    assert.ok(
      isSecretInput(verify.inputs.registryToken),
      "the registry token must be a secret input",
    );
    const created = run.h.events.indexOf(`created ${VERIFY} promoted-verify`);
    assert.ok(created >= 0, JSON.stringify(run.h.events));
    for (const idx of run.h.byType(INDEX)) {
      assert.ok(
        idx.request?.dependencies.includes(verify.request?.urn ?? "-"),
        `${idx.name} does not depend on the verification`,
      );
      assert.ok(
        run.h.events.indexOf(`register ${INDEX} ${idx.name}`) > created,
        `${idx.name} was registered before the verification finished`,
      );
    }
  });

  it("exports signing: whom it verified, and the signatures found", () => {
    assert.deepEqual(run.exports.signing, {
      mode: "kms",
      publicKey: DEV_PUBLIC_KEY,
      signatures: {},
    });
  });

  it("builds nothing and publishes every release tag at the dev digest, each Index kept on delete", () => {
    assert.equal(run.h.byType(IMAGE).length, 0);
    assert.equal(run.h.byType(EVIDENCE).length, 0);
    assert.equal(run.h.byType(TAGS).length, 0);
    const indexes = run.h.byType(INDEX);
    assert.deepEqual(indexes.map((i) => i.inputs.tag as string).sort(), [
      "ghcr.io/acme/shop-api:1",
      "ghcr.io/acme/shop-api:1.4",
      "ghcr.io/acme/shop-api:1.4.2",
      "ghcr.io/acme/shop-api:latest",
      "ghcr.io/acme/shop-api:sha-1a2b3c4",
      `ghcr.io/acme/shop-api:sha-${SHA}`,
    ]);
    for (const idx of indexes) {
      assert.deepEqual(idx.inputs.sources, [`ghcr.io/acme/shop-api@${devDigest}`]);
      assert.equal(idx.request?.retainOnDelete, true);
    }
    assert.equal(run.h.byType("pulumi:pulumi:StackReference").length, 1);
  });

  it("exports the source digest and no build hosts or cache", () => {
    assert.equal(run.exports.digest, devDigest);
    assert.equal(run.exports.imageRef, `ghcr.io/acme/shop-api@${devDigest}`);
    assert.deepEqual(run.exports.cacheRefs, {});
    assert.equal(run.exports.buildHosts, undefined);
    assert.equal(run.exports.gateResults, undefined);
    assert.equal(run.h.byType("aws:ec2/instance:Instance").length, 0);
  });

  it("leaves GitHub settings to the dev stack", () => {
    assert.equal(
      run.h.byType("github:index/repositoryEnvironment:RepositoryEnvironment").length,
      0,
    );
  });
});

describe("program under mocks: a second image on the dev stack's shared infrastructure", function () {
  this.timeout(60000);
  let h: Harness;
  const WORKER = "ghcr.io/acme/shop-worker";
  before(async () => {
    h = await installMocks("image-factory", "dev");
    const env = { GITHUB_REF: "refs/heads/main", GITHUB_SHA: SHA };
    const raw = decodeRawConfig(programConfig("dev"));
    const cfg = {
      ...validateConfig(raw, { stack: "dev", env, ...NO_LOCAL_GIT }),
      stack: "dev",
      registryToken: pulumi.secret(TOKEN),
    };
    const { sharedInfrastructureArgs } = await import("../../components/program");
    const { createSharedInfrastructure } = await import("../../components/sharedInfrastructure");
    const { imagePipeline } = await import("../../components/imagePipeline");
    await withRegistryAccepting([], async () => {
      const shared = createSharedInfrastructure(sharedInfrastructureArgs(cfg));
      const first = imagePipeline("", cfg, shared);
      const worker = imagePipeline(
        "worker",
        { ...cfg, imageName: WORKER, platforms: ["linux/arm64"], github: undefined },
        shared,
      );
      await Promise.all([resolve(first.digest), resolve(worker.digest)]);
    });
  });
  const named = (type: string) =>
    h
      .byType(type)
      .map((r) => r.name)
      .sort();

  it("provisions the build hosts, the cache and the signing key once for both images", () => {
    assert.deepEqual(named("image-factory:buildhosts:BuildHosts"), ["buildhosts"]);
    assert.deepEqual(named("image-factory:cache:BuildCache"), ["cache"]);
    assert.deepEqual(named("image-factory:signing:SigningKey"), ["signing"]);
  });

  it("builds the second image on the same arm64 builder, under its own names", () => {
    const worker = h.byType(IMAGE).filter((i) => i.name.startsWith("worker-"));
    assert.deepEqual(worker.map((i) => i.name).sort(), [
      "worker-image-coverage",
      "worker-image-linux-arm64",
    ]);
    const first = platformImages(h).find((i) => i.name === "image-linux-arm64");
    const second = worker.find((i) => i.name === "worker-image-linux-arm64");
    assert.deepEqual(second?.inputs.builder, { name: "image-factory-dev-arm64" });
    assert.deepEqual(second?.inputs.builder, first?.inputs.builder);
    assert.deepEqual(second?.inputs.tags, [`${WORKER}:sha-${SHA.slice(0, 7)}-linux-arm64`]);
  });

  it("judges and publishes each image on its own: evidence folder, Index and tag writes", () => {
    const evidence = h
      .byType(EVIDENCE)
      .map((e) => [e.name, e.inputs.imageName, e.inputs.outputDir]);
    assert.deepEqual(evidence.sort(), [
      ["evidence-evidence", "ghcr.io/acme/shop-api", ".local/evidence/dev"],
      ["worker-evidence-evidence", WORKER, ".local/evidence/dev/worker"],
    ]);
    const indexes = h.byType(INDEX).map((i) => [i.name, i.inputs.tag]);
    assert.deepEqual(indexes.sort(), [
      ["publish-index", `ghcr.io/acme/shop-api:sha-${SHA}`],
      ["worker-publish-index", `${WORKER}:sha-${SHA}`],
    ]);
    assert.deepEqual(named(TAGS), ["publish-tags", "worker-publish-tags"]);
  });
});

describe("index.ts under mocks: exports only what the stack has", function () {
  this.timeout(60000);
  const saved = { ref: process.env.GITHUB_REF, sha: process.env.GITHUB_SHA };

  /** Runs index.ts as the engine would for `stack` and returns its module exports. */
  async function loadIndex(
    stack: string,
    prepare?: (h: Harness) => void,
  ): Promise<Record<string, unknown>> {
    const h = await installMocks("image-factory", stack);
    prepare?.(h);
    pulumi.runtime.setAllConfig(programConfig(stack), ["image-factory:registryToken"]);
    process.env.GITHUB_REF = stack === "prod" ? "refs/tags/v1.4.2" : "refs/heads/main";
    process.env.GITHUB_SHA = SHA;
    const entry = require.resolve("../../index");
    delete require.cache[entry];
    return withRegistryAccepting([], async () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const exported = require(entry) as Record<string, unknown>;
      // Let the registrations settle before the mocks and config change under them.
      await resolve(exported.digest as pulumi.Output<string>);
      return exported;
    });
  }

  after(() => {
    pulumi.runtime.setAllConfig({}, []);
    for (const [k, v] of [
      ["GITHUB_REF", saved.ref],
      ["GITHUB_SHA", saved.sha],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  // What every stack exports: the image, its release, cache refs (none promoting) and signing.
  const IMAGE_EXPORTS = [
    "cacheRefs",
    "digest",
    "imageName",
    "imageRef",
    "platformDigests",
    "release",
    "sbomLocations",
    "signing",
    "tags",
  ];

  it("prod: the promotion exports, no undefined build-host, TLS or gate values", async () => {
    const exported = await loadIndex("prod", (h) => {
      h.stackOutputs["acme/image-factory/dev"] = devExports(fakeDigest("dev-index"));
    });
    assert.deepEqual(Object.keys(exported).sort(), IMAGE_EXPORTS);
    for (const [k, v] of Object.entries(exported)) assert.notEqual(v, undefined, k);
  });

  it("dev: build hosts, their commands and TLS material, and the gate results too", async () => {
    const exported = await loadIndex("dev");
    assert.deepEqual(
      Object.keys(exported).sort(),
      [...IMAGE_EXPORTS, "buildHosts", "builderCommands", "builderTls", "gateResults"].sort(),
    );
    for (const [k, v] of Object.entries(exported)) assert.notEqual(v, undefined, k);
  });
});

describe("config image-factory:signing (validateConfig, pure)", () => {
  const ctx = (stack: string) => ({
    stack,
    env: { GITHUB_REF: "refs/heads/main", GITHUB_SHA: SHA },
    ...NO_LOCAL_GIT,
  });
  const base = {
    imageName: "ghcr.io/acme/shop-api",
    registryUsername: "acme-ci",
    registryToken: TOKEN,
  };
  const problems = (raw: Record<string, unknown>, stack = "dev"): string[] => {
    try {
      validateConfig({ ...base, ...raw }, ctx(stack));
      return [];
    } catch (e) {
      return (e as { problems?: string[] }).problems ?? [String(e)];
    }
  };

  it("defaults to key where the factory runs locally and kms on dev and prod", () => {
    assert.equal(validateConfig(base, ctx("local")).signing.mode, "key");
    assert.equal(validateConfig(base, ctx("e2e-abc")).signing.mode, "key");
    assert.equal(validateConfig(base, ctx("test")).signing.mode, "key");
    assert.equal(
      validateConfig({ ...base, buildHosts: { localBuilder: "b" } }, ctx("dev")).signing.mode,
      "key",
    );
    assert.equal(validateConfig(base, ctx("dev")).signing.mode, "kms");
    assert.equal(validateConfig({ ...base, promoteFrom: "dev" }, ctx("prod")).signing.mode, "kms");
    assert.equal(validateConfig(base, ctx("dev")).signing.tlog, false);
  });

  const pem =
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
  const bad: Array<[string, Record<string, unknown>, RegExp, string?]> = [
    [
      "an unknown mode",
      { signing: { mode: "gpg" } },
      /image-factory:signing\.mode must be one of kms, key, keyless, got "gpg"/,
    ],
    [
      "an unknown field",
      { signing: { mode: "key", keyFile: "x" } },
      /image-factory:signing\.keyFile is not a known setting .*got "x"/,
    ],
    [
      "tlog as text",
      { signing: { tlog: "yes" } },
      /image-factory:signing\.tlog must be a boolean, got "yes"/,
    ],
    [
      "keyless without the log",
      { signing: { mode: "keyless", identity: "x", issuer: "y" } },
      /image-factory:signing\.tlog must be true in keyless mode/,
    ],
    [
      "keyless with a bad identity",
      {
        signing: {
          mode: "keyless",
          tlog: true,
          identity: "https://github.com/acme/x",
          issuer: "https://token.actions.githubusercontent.com",
        },
      },
      /image-factory:signing\.identity\.workflowRef must be the workflow's certificate identity.*got "https:\/\/github.com\/acme\/x"/,
    ],
    [
      "a signer that is not a role",
      { signing: { mode: "kms", signerRoleArns: ["arn:aws:iam::123456789012:user/ci"] } },
      /image-factory:signing\.signerRoleArns\[0\] must be an IAM role ARN.*"arn:aws:iam::123456789012:user\/ci"/,
    ],
    [
      "a pinned key on a building stack",
      { signing: { publicKey: pem } },
      /image-factory:signing\.publicKey pins the key a promoting stack .*got "-----BEGIN PUBLIC KEY-----/,
    ],
    [
      "a pinned key that is not a PEM",
      { promoteFrom: "dev", signing: { publicKey: "ssh-ed25519 AAAA" } },
      /image-factory:signing\.publicKey must be a PEM public key .*got "ssh-ed25519 AAAA"/,
      "prod",
    ],
  ];
  for (const [title, raw, re, stack] of bad) {
    it(`refuses ${title}, naming the key and the value`, () => {
      const p = problems(raw, stack);
      assert.ok(
        p.some((x) => re.test(x)),
        JSON.stringify(p, null, 2),
      );
    });
  }

  it("accepts a pinned key on a promoting stack and a keyless identity with the log", () => {
    assert.equal(
      validateConfig({ ...base, promoteFrom: "dev", signing: { publicKey: pem } }, ctx("prod"))
        .signing.publicKey,
      pem,
    );
    const keyless = validateConfig(
      {
        ...base,
        signing: {
          mode: "keyless",
          tlog: true,
          identity:
            "https://github.com/acme/image-factory/.github/workflows/main.yml@refs/heads/main",
          issuer: "https://token.actions.githubusercontent.com",
        },
      },
      ctx("dev"),
    ).signing;
    assert.equal(keyless.mode, "keyless");
    assert.equal(keyless.issuer, "https://token.actions.githubusercontent.com");
  });
});
