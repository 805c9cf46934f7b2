// PromotedImage under Pulumi mocks: the source stack is a mocked `pulumi:pulumi:StackReference`
// (the SDK registers it as a read of that type, id = the stack name, and reads `state.outputs`).
// Other test files call setMocks in the same mocha process, so this file installs its mocks in
// `before` and loads the component only afterwards.
//
// The source stacks' `gateResults` are made by the real evaluator (evidence/gates.ts) from literal
// measurements and bound to what they judged, exactly as the dev stack exports them; promotion
// must accept only results bound to the promoted bytes and judged within this stack's own gates.
import * as assert from "node:assert/strict";
import type * as pulumiType from "@pulumi/pulumi";
import {
  evaluateGates,
  measured,
  validateGates,
  type BoundGateResults,
  type GatesConfig,
  type Measurements,
} from "../../evidence/gates";
import type * as promotionModule from "../../components/promotion";
import { gatesPredicate, slsaProvenance } from "../../evidence/signing/predicates";
import { gatesProblems, provenanceProblems, sbomProblems } from "../../evidence/verify";
import { type Registered, recordingMocks } from "./harness";

type Pulumi = typeof pulumiType;
type Promotion = typeof promotionModule;

const DIGEST = `sha256:${"ab".repeat(32)}`;
const OTHER_DIGEST = `sha256:${"cd".repeat(32)}`;
const IMAGE = "ghcr.io/acme/shop-api";
const SHA = "1a2b3c4d".repeat(5);
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const MB = 1024 * 1024;
const AMD64 = `sha256:${"01".repeat(32)}`;
const ARM64 = `sha256:${"02".repeat(32)}`;
const PLATFORM_DIGESTS = { "linux/amd64": AMD64, "linux/arm64": ARM64 };
const TOOLS = {
  syft: "1.57.0",
  trivy: "0.74.0",
  trivyDb: "2",
  hadolint: "2.15.1",
  dive: "0.13.1",
  coverage: "c8",
};

/** dev's gates: the committed Pulumi.dev.yaml values plus defaults. */
const DEV_GATES: GatesConfig = validateGates({
  maxImageSizeMb: 500,
  minCoverage: 80,
  maxCritical: 0,
});

interface Measure {
  sizeMb?: number;
  efficiency?: number;
  lines?: number;
}

/** What the scanners measured for the dev image: both platforms alike. */
function measurements({ sizeMb = 120, efficiency = 0.98, lines = 92 }: Measure = {}): Measurements {
  const platform = {
    sizeBytes: measured(sizeMb * MB),
    efficiency: measured(efficiency),
    wastedBytes: measured(2 * MB),
    criticalVulnerabilities: measured(0),
    imageSecrets: measured([]),
  };
  return {
    platforms: { "linux/amd64": platform, "linux/arm64": { ...platform } },
    coverage: measured({ lines, branches: 88, functions: 90 }),
    lint: measured([]),
    misconfigurations: measured([]),
    secrets: measured([]),
  };
}

/** dev's gate results for `m`, bound to the dev image as the dev stack exports them. */
function bound(m: Measure = {}, gates: GatesConfig = DEV_GATES): BoundGateResults {
  return {
    ...evaluateGates(measurements(m), gates, { tools: TOOLS }),
    imageName: IMAGE,
    digest: DIGEST,
    platformDigests: { ...PLATFORM_DIGESTS },
    sourceRevision: SHA,
  };
}

/** The slice of the dev stack's exports promotion reads (a type alias, so it is also a plain record). */
type DevOutputs = {
  imageName: string;
  digest: string;
  imageRef: string;
  platformDigests: Record<string, string>;
  sbomLocations: Record<string, string>;
  gateResults: BoundGateResults;
  release?: { ref: string; sha?: string; version: string; prerelease: boolean };
};

/** The dev stack's exports for an image whose gates measured `m`. */
function devOutputs(m: Measure = {}, gates: GatesConfig = DEV_GATES): DevOutputs {
  return {
    imageName: IMAGE,
    digest: DIGEST,
    imageRef: `${IMAGE}@${DIGEST}`,
    platformDigests: { ...PLATFORM_DIGESTS },
    sbomLocations: {
      "linux/amd64": `oci://${IMAGE}@${AMD64}#sbom`,
      "linux/arm64": `oci://${IMAGE}@${ARM64}#sbom`,
    },
    gateResults: bound(m, gates),
    release: { ref: "refs/heads/main", sha: SHA, version: "main-1a2b3c4", prerelease: false },
  };
}

/** The release check of dev's `outputs` for SHA, under dev's gates as changed by `gates`. */
function checkAsProd(outputs: DevOutputs, gates: Partial<GatesConfig> = {}) {
  return promotion.checkSourceOutputs("dev", IMAGE, outputs, true, SHA, { ...DEV_GATES, ...gates });
}

const goodOutputs = devOutputs();

const PUBLIC_KEY =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsrc\n-----END PUBLIC KEY-----\n";
const PINNED_KEY =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpin\n-----END PUBLIC KEY-----\n";
const VERIFY = "pulumi-nodejs:dynamic/promotion:Verify";

/** Source stacks by name, as the mocked backend would return their outputs. */
const SOURCES: Record<string, Record<string, unknown>> = {
  "acme/image-factory/dev": goodOutputs,
  "acme/image-factory/empty": { imageName: IMAGE },
  "acme/image-factory/failed": {
    ...goodOutputs,
    gateResults: {
      ...goodOutputs.gateResults,
      passed: false,
      failed: ["criticalVulnerabilities[linux/amd64]"],
      checks: [
        {
          gate: "criticalVulnerabilities[linux/amd64]",
          configKey: "gates.maxCritical",
          status: "failed",
          passed: false,
          measured: 3,
          limit: 0,
          unit: "",
        },
        {
          gate: "coverage",
          configKey: "gates.minCoverage",
          status: "passed",
          passed: true,
          measured: 92,
          limit: 80,
          unit: "%",
        },
      ],
    },
  },
  "acme/image-factory/nogates": { ...goodOutputs, gateResults: undefined },
  // dev re-pushed the list after the gates ran: the results name other bytes.
  "acme/image-factory/rejudged": {
    ...goodOutputs,
    gateResults: { ...goodOutputs.gateResults, digest: OTHER_DIGEST },
  },
  // 450 MB passes dev's 500 MB limit.
  "acme/image-factory/large": devOutputs({ sizeMb: 450 }),
  // A signing source stack: its gateResults output says failed, but with verification promotion
  // reads the gates from the signed attestation (the mocked Verify resource), not from this.
  "acme/image-factory/signed": {
    ...goodOutputs,
    gateResults: { ...goodOutputs.gateResults, passed: false },
    signing: { mode: "key", publicKey: PUBLIC_KEY, signatures: {} },
  },
};

let pulumi: Pulumi;
let promotion: Promotion;
const registered: Registered[] = [];

function promiseOf<T>(output: pulumiType.Output<T>): Promise<T> {
  // Output.promise() is internal to the SDK; apply() never runs on a rejected output, so the
  // rejection is observed through the same internal promise the engine awaits.
  return (output as unknown as { promise(): Promise<T> }).promise();
}

/** Runs `fn` with unhandled rejections collected instead of failing the mocha run: a resource whose
 *  inputs reject makes the SDK raise one on purpose, which is how `pulumi up` reports the error. */
async function collectingRejections<T>(
  fn: () => Promise<T>,
): Promise<{ result: T | Error; rejections: string[] }> {
  const saved = process.listeners("unhandledRejection");
  process.removeAllListeners("unhandledRejection");
  const rejections: string[] = [];
  const collect = (reason: unknown): void => {
    rejections.push(reason instanceof Error ? reason.message : String(reason));
  };
  process.on("unhandledRejection", collect);
  try {
    let result: T | Error;
    try {
      result = await fn();
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
    }
    // Let the resource registrations that depend on the failed output settle.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { result, rejections };
  } finally {
    process.removeListener("unhandledRejection", collect);
    for (const l of saved) process.on("unhandledRejection", l);
  }
}

function args(
  overrides: Partial<promotionModule.PromotedImageArgs> = {},
): promotionModule.PromotedImageArgs {
  return {
    sourceStack: "acme/image-factory/dev",
    imageName: IMAGE,
    tags: ["1.2.3", "1.2", "1", "latest"],
    prerelease: false,
    registry: {
      address: "ghcr.io",
      username: "acme-bot",
      password: pulumi.secret("ghp_not-a-real-token"),
    },
    ...overrides,
  };
}

describe("PromotedImage (mocks)", () => {
  before(async () => {
    pulumi = await import("@pulumi/pulumi");
    await recordingMocks(
      { resources: registered },
      (a) => {
        if (a.type === "pulumi:pulumi:StackReference") {
          const stack = String(a.inputs.name);
          return {
            id: stack,
            state: { name: stack, outputs: SOURCES[stack] ?? {}, secretOutputNames: [] },
          };
        }
        if (a.type === VERIFY && a.name.startsWith("refused")) {
          // What the engine reports when the verify step refuses (evidence/verify.ts).
          throw new Error(
            `refusing to promote ${String(a.inputs.imageName)}@${String(a.inputs.digest)}: no signature`,
          );
        }
        if (a.type === "docker-build:index:Index") {
          const source = String((a.inputs.sources as string[])[0]);
          return {
            id: `${a.name}-id`,
            state: {
              ...a.inputs,
              ref: `${String(a.inputs.tag)}@${source.slice(source.indexOf("@") + 1)}`,
            },
          };
        }
        return { id: `${a.name}-id`, state: a.inputs };
      },
      undefined,
      "prod",
    );
    promotion = await import("../../components/promotion");
  });

  beforeEach(() => {
    registered.length = 0;
  });

  /** PromotedImage `name` whose `output` must reject, registering no Index: its error. With
   *  `rejection`, the registrations that depend on the output must fail with it too (that is what
   *  `pulumi up` prints). */
  async function refused(
    name: string,
    promotedArgs: promotionModule.PromotedImageArgs,
    rejection?: string,
    output: "digest" | "tags" = "digest",
  ): Promise<Error> {
    const { result, rejections } = await collectingRejections(async () => {
      const pi = new promotion.PromotedImage(name, promotedArgs);
      return output === "digest" ? promiseOf(pi.digest) : promiseOf(pi.tags);
    });
    assert.ok(result instanceof Error, `expected the ${output} output to reject`);
    if (rejection !== undefined)
      assert.ok(
        rejections.some((m) => m.includes(rejection)),
        `rejections: ${JSON.stringify(rejections)}`,
      );
    assert.deepEqual(indexes(), [], "no Index may be registered");
    return result;
  }
  /** The default arguments, promoting from the stack `acme/image-factory/<stack>` of SOURCES. */
  const fromSource = (stack: string) => args({ sourceStack: `acme/image-factory/${stack}` });
  /** The default arguments, verifying the signed source stack for the commit SHA under dev's gates. */
  const fromSigned = (verification: promotionModule.PromotedImageArgs["verification"]) =>
    args({
      sourceStack: "acme/image-factory/signed",
      expectedRevision: SHA,
      gates: DEV_GATES,
      verification,
    });
  const indexes = (): Registered[] =>
    registered.filter((r) => r.type === "docker-build:index:Index");

  it("reads the source stack and publishes every tag at its digest without building", async () => {
    const pi = new promotion.PromotedImage("promo", args());
    const [digest, imageRef, tags, platformDigests, sbomLocations, sourceStack] = await Promise.all(
      [
        promiseOf(pi.digest),
        promiseOf(pi.imageRef),
        promiseOf(pi.tags),
        promiseOf(pi.platformDigests),
        promiseOf(pi.sbomLocations),
        promiseOf(pi.sourceStack),
      ],
    );
    assert.equal(digest, DIGEST);
    assert.equal(imageRef, `${IMAGE}@${DIGEST}`);
    assert.deepEqual(
      tags,
      ["1.2.3", "1.2", "1", "latest"].map((t) => `${IMAGE}:${t}`),
    );
    assert.deepEqual(platformDigests, goodOutputs.platformDigests);
    assert.deepEqual(sbomLocations, goodOutputs.sbomLocations);
    assert.equal(sourceStack, "acme/image-factory/dev");

    const refs = registered.filter((r) => r.type === "pulumi:pulumi:StackReference");
    assert.equal(refs.length, 1);
    assert.equal(refs[0].inputs.name, "acme/image-factory/dev");
    assert.equal(refs[0].id, "acme/image-factory/dev");

    const indexes = registered.filter((r) => r.type === "docker-build:index:Index");
    assert.deepEqual(indexes.map((i) => i.inputs.tag).sort(), tags.slice().sort());
    for (const index of indexes) {
      assert.deepEqual(index.inputs.sources, [`${IMAGE}@${DIGEST}`]);
      assert.equal(index.inputs.push, true);
      // The credentials reach the provider wrapped as a secret (the whole block, since it holds
      // the token), never as plain text.
      const registry = index.inputs.registry as Record<string, unknown>;
      assert.equal(registry[SECRET_SIG_KEY], SECRET_SIG);
      assert.deepEqual(registry.value, {
        address: "ghcr.io",
        username: "acme-bot",
        password: "ghp_not-a-real-token",
      });
    }
    assert.deepEqual(
      await promiseOf(pi.publishedRefs),
      tags.map((t) => `${t}@${DIGEST}`),
    );
    assert.equal(
      registered.filter((r) => r.type === "docker-build:index:Image").length,
      0,
      "promotion must not build an Image",
    );
    assert.deepEqual(
      registered
        .map((r) => r.type)
        .filter((t) => t !== "image-factory:promotion:PromotedImage")
        .sort(),
      [
        "docker-build:index:Index",
        "docker-build:index:Index",
        "docker-build:index:Index",
        "docker-build:index:Index",
        "pulumi:pulumi:StackReference",
      ],
    );
  });

  it("publishes a prerelease's tags without latest", async () => {
    const pi = new promotion.PromotedImage(
      "pre",
      args({ tags: promotion.promotionTags(["1.3.0-rc.1", "latest"], true), prerelease: true }),
    );
    assert.deepEqual(await promiseOf(pi.tags), [`${IMAGE}:1.3.0-rc.1`]);
    assert.deepEqual(
      registered.filter((r) => r.type === "docker-build:index:Index").map((r) => r.inputs.tag),
      [`${IMAGE}:1.3.0-rc.1`],
    );
  });

  it("refuses a source stack without a digest, naming the stack and the export", async () => {
    const result = await refused("nodigest", fromSource("empty"), 'has no "digest" output');
    assert.match(
      result.message,
      /source stack "acme\/image-factory\/empty" has no "digest" output/,
    );
  });

  it("refuses a source stack whose gates failed, naming the failed checks", async () => {
    const result = await refused("failed", fromSource("failed"));
    assert.match(result.message, /"acme\/image-factory\/failed" "gateResults.passed" is false/);
    assert.match(
      result.message,
      /failed checks: criticalVulnerabilities\[linux\/amd64\] \(measured 3, limit 0\)/,
    );
    assert.doesNotMatch(result.message, /coverage/);
  });

  it("refuses a source stack whose gate results judged other bytes, registering no Index", async () => {
    const result = await refused("rejudged", fromSource("rejudged"), '"gateResults.digest" is');
    assert.match(
      result.message,
      new RegExp(
        `source stack "acme/image-factory/rejudged" "gateResults\\.digest" is "${OTHER_DIGEST}", not its "digest" ${DIGEST}: the gates judged other bytes`,
      ),
    );
  });

  it("judges the source's measurements again with this stack's gates (PromotedImageArgs.gates)", async () => {
    // 450 MB passed dev's 500 MB limit; this stack allows 400 MB.
    assert.equal(
      (SOURCES["acme/image-factory/large"].gateResults as BoundGateResults).passed,
      true,
    );
    const result = await refused(
      "large",
      args({
        sourceStack: "acme/image-factory/large",
        gates: { ...DEV_GATES, maxImageSizeMb: 400 },
      }),
    );
    assert.match(
      result.message,
      /source stack "acme\/image-factory\/large" check imageSize\[linux\/amd64\] measured 450 MB, which fails this stack's gates\.maxImageSizeMb = 400; refusing to promote/,
    );

    // The same source under limits it meets is published.
    registered.length = 0;
    const ok = new promotion.PromotedImage(
      "large-ok",
      args({
        sourceStack: "acme/image-factory/large",
        gates: { ...DEV_GATES, maxImageSizeMb: 450 },
      }),
    );
    assert.equal(await promiseOf(ok.digest), DIGEST);
    await promiseOf(ok.tags);
    assert.deepEqual(
      registered.filter((r) => r.type === "docker-build:index:Index").map((r) => r.inputs.tag),
      ["1.2.3", "1.2", "1", "latest"].map((t) => `${IMAGE}:${t}`),
    );
  });

  it("refuses a source stack without gateResults unless requireGatesPassed is false", async () => {
    const result = await refused("nogates", fromSource("nogates"));
    assert.match(result.message, /has no "gateResults" output/);

    const allowed = new promotion.PromotedImage(
      "nogates-ok",
      args({ sourceStack: "acme/image-factory/nogates", requireGatesPassed: false }),
    );
    assert.equal(await promiseOf(allowed.digest), DIGEST);
  });

  it("refuses a source stack that holds another commit than the one being released", async () => {
    const result = await refused("stale", args({ expectedRevision: "f".repeat(40) }));
    assert.match(
      result.message,
      new RegExp(
        `"gateResults\\.sourceRevision" is "${"1a2b3c4d".repeat(5)}", but this release is ${"f".repeat(40)}: the gates judged another commit`,
      ),
    );
    const same = new promotion.PromotedImage(
      "same",
      args({ expectedRevision: "1a2b3c4d".repeat(5) }),
    );
    assert.equal(await promiseOf(same.digest), DIGEST);
  });

  it("refuses latest on a prerelease before registering anything", async () => {
    assert.throws(
      () =>
        new promotion.PromotedImage(
          "latest-pre",
          args({ tags: ["1.3.0-rc.1", "latest"], prerelease: true }),
        ),
      /refusing to move "latest" to a prerelease/,
    );
    assert.throws(
      () =>
        new promotion.PromotedImage(
          "latest-pre2",
          args({ tags: ["2.0.0-beta.2", "latest"], prerelease: false }),
        ),
      /tag "2.0.0-beta.2" is a prerelease version/,
    );
    assert.equal(
      registered.filter((r) => r.type !== "image-factory:promotion:PromotedImage").length,
      0,
    );
  });

  it("with verification: verifies the digest first, with the source's exported key, and the Indexes copy the verified digest", async () => {
    const pi = new promotion.PromotedImage("verified", fromSigned({ mode: "key" }));
    assert.equal(await promiseOf(pi.digest), DIGEST);
    await promiseOf(pi.tags);
    const types = registered
      .map((r) => r.type)
      .filter((t) => t !== "image-factory:promotion:PromotedImage");
    assert.equal(types.filter((t) => t === VERIFY).length, 1);
    // The source's failed gateResults OUTPUT is not what decides: the Verify step (the attestation) is.
    assert.ok(
      types.indexOf(VERIFY) < types.indexOf("docker-build:index:Index"),
      `order: ${types.join(", ")}`,
    );
    const verify = registered.find((r) => r.type === VERIFY) as Registered;
    assert.equal(verify.inputs.digest, DIGEST);
    assert.equal(verify.inputs.expectedRevision, SHA);
    assert.deepEqual(verify.inputs.platformDigests, PLATFORM_DIGESTS);
    assert.deepEqual(verify.inputs.trust, { publicKeyPem: PUBLIC_KEY });
    assert.deepEqual(verify.inputs.gates, DEV_GATES);
    assert.equal(
      (verify.inputs.registryToken as Record<string, unknown>)[SECRET_SIG_KEY],
      SECRET_SIG,
      "token as a secret",
    );
    for (const idx of registered.filter((r) => r.type === "docker-build:index:Index")) {
      assert.deepEqual(idx.inputs.sources, [`${IMAGE}@${DIGEST}`]);
    }
    assert.deepEqual(await promiseOf(pi.signing as pulumiType.Output<unknown>), {
      mode: "key",
      publicKey: PUBLIC_KEY,
      signatures: {},
    });
  });

  it("with verification: a pinned key wins over the source's export", async () => {
    const pi = new promotion.PromotedImage(
      "pinned",
      fromSigned({ mode: "kms", publicKey: PINNED_KEY }),
    );
    await promiseOf(pi.tags);
    const verify = registered.find((r) => r.type === VERIFY) as Registered;
    assert.deepEqual(verify.inputs.trust, { publicKeyPem: PINNED_KEY });
  });

  it("with verification: a refused verification registers no Index", async () => {
    await refused("refused", fromSigned({ mode: "key" }), "no signature", "tags");
  });

  it("with verification: a source that exports no key and no pinned key is refused, naming both", async () => {
    const result = await refused(
      "nokey",
      args({ expectedRevision: SHA, gates: DEV_GATES, verification: { mode: "key" } }),
      undefined,
      "tags",
    );
    assert.match(result.message, /exports no "signing.publicKey".*image-factory:signing.publicKey/);
  });

  it("refuses promoting a stack onto itself", async () => {
    assert.throws(
      () => new promotion.PromotedImage("self", args({ sourceStack: "prod" })),
      /is this stack itself/,
    );
    assert.throws(
      () => new promotion.PromotedImage("self2", fromSource("prod")),
      /is this stack itself/,
    );
  });
});

describe("promotion rules (pure)", () => {
  before(async () => {
    promotion = await import("../../components/promotion");
  });

  const base = (): promotionModule.PromotedImageArgs => ({
    sourceStack: "dev",
    imageName: IMAGE,
    tags: ["1.2.3"],
    prerelease: false,
    registry: { address: "ghcr.io", username: "bot", password: "token" },
  });
  const cases: Array<[string, Partial<promotionModule.PromotedImageArgs>, RegExp]> = [
    [
      "empty source stack",
      { sourceStack: "" },
      /promoteFrom \(sourceStack\) must be a stack name.*""/,
    ],
    [
      "source stack with spaces",
      { sourceStack: "my dev" },
      /promoteFrom \(sourceStack\).*"my dev"/,
    ],
    [
      "source stack with four segments",
      { sourceStack: "a/b/c/d" },
      /promoteFrom \(sourceStack\).*"a\/b\/c\/d"/,
    ],
    [
      "uppercase image name",
      { imageName: "ghcr.io/Acme/api" },
      /imageName must be a lowercase.*"ghcr.io\/Acme\/api"/,
    ],
    ["image name without registry", { imageName: "shop-api" }, /imageName.*"shop-api"/],
    ["no tags", { tags: [] }, /tags must list at least one tag.*"dev"/],
    [
      "full ref as tag",
      { tags: ["ghcr.io/acme/shop-api:1.2.3"] },
      /tags: "ghcr.io\/acme\/shop-api:1.2.3" is not a valid tag name/,
    ],
    ["tag starting with a dot", { tags: [".hidden"] }, /tags: ".hidden" is not a valid tag name/],
    ["tag over 128 characters", { tags: ["a".repeat(129)] }, /is not a valid tag name/],
    [
      "latest on a prerelease",
      { tags: ["1.3.0-rc.1", "latest"], prerelease: true },
      /refusing to move "latest" to a prerelease/,
    ],
    [
      "latest beside a prerelease version",
      { tags: ["v1.3.0-rc.1", "latest"] },
      /tag "v1.3.0-rc.1" is a prerelease version/,
    ],
    [
      "registry elsewhere",
      { registry: { address: "docker.io", username: "bot", password: "t" } },
      /imageName "ghcr.io\/acme\/shop-api" is not on registry.address "docker.io"/,
    ],
    [
      "no registry username",
      { registry: { address: "ghcr.io", username: "", password: "t" } },
      /registry.username \(config registryUsername\)/,
    ],
    [
      "no registry token",
      { registry: { address: "ghcr.io", username: "bot", password: "" } },
      /registry.password \(config registryToken/,
    ],
  ];
  for (const [title, overrides, expected] of cases) {
    it(`validatePromotion refuses ${title}`, async () => {
      assert.throws(
        () =>
          promotion.validatePromotion(
            { ...base(), ...overrides },
            { project: "image-factory", stack: "prod" },
          ),
        expected,
      );
    });
  }

  it("validatePromotion accepts a stable release with latest and deduplicates", async () => {
    assert.deepEqual(
      promotion.validatePromotion(
        { ...base(), tags: ["1.2.3", "1.2", "1", "latest", "1.2"] },
        { project: "image-factory", stack: "prod" },
      ),
      ["1.2.3", "1.2", "1", "latest"],
    );
    // A stack of the same name in another project is not this stack.
    assert.deepEqual(
      promotion.validatePromotion(
        { ...base(), sourceStack: "acme/other/prod" },
        { project: "image-factory", stack: "prod" },
      ),
      ["1.2.3"],
    );
  });

  it("promotionTags drops latest only for prereleases", async () => {
    assert.deepEqual(promotion.promotionTags(["2.0.0-rc.1", "latest", "2.0.0-rc.1"], true), [
      "2.0.0-rc.1",
    ]);
    assert.deepEqual(promotion.promotionTags(["2.0.0", "2.0", "2", "latest"], false), [
      "2.0.0",
      "2.0",
      "2",
      "latest",
    ]);
  });

  const sourceCases: Array<[string, promotionModule.SourceStackOutputs, boolean, RegExp]> = [
    [
      "no outputs at all",
      {},
      true,
      /source stack "dev" has no "digest" output; run `pulumi up` on "dev" first/,
    ],
    ["an empty digest", { digest: "" }, true, /has no "digest" output/],
    [
      "a malformed digest",
      { digest: "sha256:xyz" },
      true,
      /exports "digest" = "sha256:xyz", which is not a sha256:<64 hex> digest/,
    ],
    [
      "an imageRef at another digest",
      { digest: DIGEST, imageRef: `${IMAGE}@sha256:${"cd".repeat(32)}` },
      true,
      /"imageRef" = .* does not point at its digest/,
    ],
    ["gates not exported", { digest: DIGEST }, true, /has no "gateResults" output/],
    [
      "gates as a string",
      { digest: DIGEST, gateResults: "passed" },
      true,
      /exports "gateResults" = "passed", expected \{ passed, checks \}/,
    ],
    [
      "gates failed without checks",
      { digest: DIGEST, gateResults: { passed: false } },
      true,
      /"gateResults.passed" is false.*no check names were exported/,
    ],
    [
      "gates passed as a string",
      { digest: DIGEST, gateResults: { passed: "true" } },
      true,
      /"gateResults.passed" is "true"/,
    ],
  ];
  for (const [title, outputs, requireGates, expected] of sourceCases) {
    it(`checkSourceOutputs refuses ${title}`, async () => {
      assert.throws(
        () => promotion.checkSourceOutputs("dev", IMAGE, outputs, requireGates),
        expected,
      );
    });
  }

  it("checkSourceOutputs accepts bound, passed results of this commit and returns what to publish", async () => {
    const checked = promotion.checkSourceOutputs("dev", IMAGE, devOutputs(), true, SHA, DEV_GATES);
    assert.deepEqual(checked, {
      digest: DIGEST,
      sourceRef: `${IMAGE}@${DIGEST}`,
      platformDigests: { "linux/amd64": AMD64, "linux/arm64": ARM64 },
      sbomLocations: {
        "linux/amd64": `oci://${IMAGE}@${AMD64}#sbom`,
        "linux/arm64": `oci://${IMAGE}@${ARM64}#sbom`,
      },
    });
    // Without an imageRef the copy comes from this repository; without required gates nothing
    // about them is read.
    const noRef = promotion.checkSourceOutputs("dev", IMAGE, { digest: DIGEST }, false);
    assert.equal(noRef.sourceRef, `${IMAGE}@${DIGEST}`);
  });

  /** devOutputs() with `change` applied to a copy. */
  const changed = (
    change: (o: DevOutputs) => void,
    m: Measure = {},
    gates: GatesConfig = DEV_GATES,
  ) => {
    const o = devOutputs(m, gates);
    change(o);
    return o;
  };

  it("checkSourceOutputs refuses gate results of another manifest list, naming both digests", async () => {
    const outputs = changed((o) => {
      o.gateResults.digest = OTHER_DIGEST;
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" "gateResults\\.digest" is "${OTHER_DIGEST}", not its "digest" ${DIGEST}: the gates judged other bytes; refusing to promote`,
      ),
    );
    const missing = changed((o) => {
      delete (o.gateResults as Partial<BoundGateResults>).digest;
    });
    assert.throws(
      () => promotion.checkSourceOutputs("dev", IMAGE, missing, true, SHA, DEV_GATES),
      new RegExp(`"gateResults\\.digest" is undefined, not its "digest" ${DIGEST}`),
    );
  });

  it("checkSourceOutputs refuses gate results whose platform digests are swapped", async () => {
    const outputs = changed((o) => {
      o.gateResults.platformDigests = { "linux/amd64": ARM64, "linux/arm64": AMD64 };
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" "gateResults\\.platformDigests" linux/amd64 is "${ARM64}", but "platformDigests" linux/amd64 is "${AMD64}"; refusing to promote ${DIGEST}`,
      ),
    );
  });

  it("checkSourceOutputs refuses gate results missing a platform the source exports", async () => {
    const outputs = changed((o) => {
      o.gateResults.platformDigests = { "linux/amd64": AMD64 };
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `"gateResults\\.platformDigests" linux/arm64 is undefined, but "platformDigests" linux/arm64 is "${ARM64}"`,
      ),
    );
  });

  it("checkSourceOutputs refuses gate results of another repository", async () => {
    const outputs = changed((o) => {
      o.gateResults.imageName = "ghcr.io/mallory/shop-api";
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" "gateResults\\.imageName" is "ghcr\\.io/mallory/shop-api", not "ghcr\\.io/acme/shop-api"; refusing to promote ${DIGEST}`,
      ),
    );
  });

  it("checkSourceOutputs refuses an imageRef in another repository", async () => {
    const outputs = changed((o) => {
      o.imageRef = `ghcr.io/acme/shop-api-dev@${DIGEST}`;
    });
    assert.throws(
      () => checkAsProd(outputs),
      /source stack "dev" "imageRef" is in "ghcr\.io\/acme\/shop-api-dev", not in this stack's imageName "ghcr\.io\/acme\/shop-api"; promotion copies within one repository only/,
    );
    // Also when gates are not required: the copy source is the same repository or nothing.
    assert.throws(
      () =>
        promotion.checkSourceOutputs(
          "dev",
          IMAGE,
          { digest: DIGEST, imageRef: `docker.io/acme/shop-api@${DIGEST}` },
          false,
        ),
      /"imageRef" is in "docker\.io\/acme\/shop-api", not in this stack's imageName "ghcr\.io\/acme\/shop-api"/,
    );
  });

  it("checkSourceOutputs refuses results with checks that did not run", async () => {
    const outputs = changed((o) => {
      o.gateResults.notRun = ["coverage"];
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" "gateResults\\.notRun" is \\["coverage"\\]: every check must have run; refusing to promote ${DIGEST}`,
      ),
    );
  });

  it("checkSourceOutputs refuses results without a notRun list", async () => {
    const outputs = changed((o) => {
      delete (o.gateResults as Partial<BoundGateResults>).notRun;
    });
    assert.throws(
      () => checkAsProd(outputs),
      /source stack "dev" "gateResults\.notRun" is undefined: every check must have run/,
    );
    const notAList = changed((o) => {
      (o.gateResults as unknown as Record<string, unknown>).notRun = "none";
    });
    assert.throws(
      () => promotion.checkSourceOutputs("dev", IMAGE, notAList, true, SHA, DEV_GATES),
      /"gateResults\.notRun" is "none": every check must have run/,
    );
  });

  it("checkSourceOutputs refuses a source without release.sha when the revision is expected", async () => {
    const outputs = changed((o) => {
      o.release = { ref: "refs/heads/main", version: "main-1a2b3c4", prerelease: false };
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" exports no "release\\.sha", so the promoted digest cannot be shown to be commit ${SHA}; refusing to promote ${DIGEST}`,
      ),
    );
    const noRelease = changed((o) => {
      delete o.release;
    });
    assert.throws(
      () => promotion.checkSourceOutputs("dev", IMAGE, noRelease, true, SHA, DEV_GATES),
      /exports no "release\.sha"/,
    );
  });

  it("checkSourceOutputs refuses a source whose release.sha is another commit", async () => {
    const later = "9".repeat(40);
    const outputs = changed((o) => {
      o.release = {
        ref: "refs/heads/main",
        sha: later,
        version: "main-9999999",
        prerelease: false,
      };
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" "release.sha" is ${later}, but this release is ${SHA}; deploy ${SHA} to "dev" first`,
      ),
    );
  });

  // Each row: what dev measured (within dev's gates), this stack's stricter gate, and the refusal.
  // prettier-ignore
  const stricter: Array<[string, Measure, Partial<GatesConfig>, string]> = [
    ["an image size within dev's limit but over this stack's", { sizeMb: 450 }, { maxImageSizeMb: 400 }, "check imageSize[linux/amd64] measured 450 MB, which fails this stack's gates.maxImageSizeMb = 400"],
    ["coverage within dev's limit but under this stack's", { lines: 81 }, { minCoverage: 85 }, "check coverage measured 81 %, which fails this stack's gates.minCoverage = 85"],
  ];
  for (const [what, measure, gates, refusal] of stricter) {
    it(`checkSourceOutputs refuses ${what}`, async () => {
      const outputs = devOutputs(measure);
      assert.equal(outputs.gateResults.passed, true, "dev's own gates pass it");
      assert.equal(checkAsProd(outputs).digest, DIGEST);
      const message = `source stack "dev" ${refusal}; refusing to promote ${DIGEST}`;
      assert.throws(
        () => checkAsProd(outputs, gates),
        (e: Error) => e.message.includes(message) || assert.fail(e.message),
      );
    });
  }

  // dev waives Dive efficiency (0.9 < 0.95) with a reason; the waiver is dev's, not prod's.
  const WAIVE_EFFICIENCY = { efficiency: "the Node runtime layer is shared with the base image" };

  it("checkSourceOutputs refuses a check waived on the source stack but not on this one", async () => {
    const outputs = devOutputs({ efficiency: 0.9 }, { ...DEV_GATES, waive: WAIVE_EFFICIENCY });
    assert.equal(outputs.gateResults.passed, true);
    assert.deepEqual(outputs.gateResults.waived, {
      "efficiency[linux/amd64]": "the Node runtime layer is shared with the base image",
      "efficiency[linux/arm64]": "the Node runtime layer is shared with the base image",
    });
    assert.throws(
      () => checkAsProd(outputs),
      new RegExp(
        `source stack "dev" "gateResults" check efficiency\\[linux/amd64\\] was waived there \\("the Node runtime layer is shared with the base image"\\) but this stack does not waive it \\(gates\\.waive\\); refusing to promote ${DIGEST}`,
      ),
    );
    // Waiving one platform here leaves the other one refused.
    assert.throws(
      () =>
        checkAsProd(outputs, {
          waive: { "efficiency[linux/amd64]": "amd64 shares the runtime layer too" },
        }),
      /check efficiency\[linux\/arm64\] was waived there .* but this stack does not waive it/,
    );
  });

  it("checkSourceOutputs accepts a check waived on the source stack when this stack waives it too", async () => {
    const outputs = devOutputs({ efficiency: 0.9 }, { ...DEV_GATES, waive: WAIVE_EFFICIENCY });
    const checked = checkAsProd(outputs, {
      waive: { efficiency: "prod accepts the shared runtime layer as well" },
    });
    assert.equal(checked.digest, DIGEST);
    assert.equal(checked.sourceRef, `${IMAGE}@${DIGEST}`);
  });
});

describe("evidence/verify judges (pure): what promotion reads from the signed attestations", () => {
  const listed = { ...PLATFORM_DIGESTS };
  const expect = { digest: DIGEST, platformDigests: listed, repository: IMAGE, gates: DEV_GATES };
  const predicate = (
    m: Measure = {},
    over: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    ...gatesPredicate({
      indexDigest: DIGEST,
      platformDigests: listed,
      sourceRevision: SHA,
      repository: IMAGE,
      results: bound(m),
    }),
    ...over,
  });

  it("accepts the gates predicate the publish step attests for these bytes", () => {
    assert.deepEqual(gatesProblems([predicate()], expect), []);
  });

  const refusals: Array<[string, unknown[], RegExp]> = [
    ["no gates attestation", [], /gates attestation on sha256:ab.*: none verified/],
    [
      "another manifest list",
      [predicate({}, { indexDigest: OTHER_DIGEST })],
      new RegExp(`names indexDigest "${OTHER_DIGEST}": the gates judged another manifest list`),
    ],
    [
      "a swapped platform digest",
      [predicate({}, { platformDigests: { "linux/amd64": ARM64, "linux/arm64": AMD64 } })],
      /platform linux\/amd64 was judged at "sha256:0202.*", but the manifest list holds "sha256:0101/,
    ],
    [
      "another repository",
      [predicate({}, { repository: "ghcr.io/evil/shop-api" })],
      /names repository "ghcr.io\/evil\/shop-api", not "ghcr.io\/acme\/shop-api"/,
    ],
    [
      "failed gates",
      [predicate({ sizeMb: 600 })],
      /says passed = false; failed: imageSize\[linux\/amd64\] \(failed/,
    ],
    [
      "checks that did not run",
      [predicate({}, { notRun: ["coverage"] })],
      /lists checks that did not run: notRun = \["coverage"\]/,
    ],
    [
      "a missing check",
      [
        predicate(
          {},
          {
            checks: (predicate().checks as Array<{ name: string }>).filter(
              (c) => c.name !== "criticalVulnerabilities[linux/arm64]",
            ),
          },
        ),
      ],
      /has no criticalVulnerabilities\[linux\/arm64\] check/,
    ],
    [
      "a good one beside one for other bytes",
      [predicate(), predicate({}, { indexDigest: OTHER_DIGEST })],
      /judged another manifest list/,
    ],
  ];
  for (const [title, preds, re] of refusals) {
    it(`gatesProblems refuses ${title}`, () => {
      const problems = gatesProblems(preds, expect);
      assert.ok(
        problems.some((p) => re.test(p)),
        JSON.stringify(problems, null, 2),
      );
    });
  }

  it("gatesProblems judges the attested measurements again with this stack's gates and waivers", () => {
    // 450 MB passed dev's 500 MB limit; prod allows 400 MB.
    const problems = gatesProblems([predicate({ sizeMb: 450 })], {
      ...expect,
      gates: { ...DEV_GATES, maxImageSizeMb: 400 },
    });
    assert.ok(
      problems.some((p) =>
        /check imageSize\[linux\/amd64\] measured 450 MB, which fails this stack's gates.maxImageSizeMb = 400/.test(
          p,
        ),
      ),
      JSON.stringify(problems),
    );
    const waived = bound(
      {},
      {
        ...DEV_GATES,
        minCoverage: 95,
        waive: { coverage: "legacy module without tests (ACME-1)" },
      },
    );
    const wp = gatesPredicate({
      indexDigest: DIGEST,
      platformDigests: listed,
      sourceRevision: SHA,
      repository: IMAGE,
      results: waived,
    });
    assert.ok(
      gatesProblems([wp], expect).some((p) =>
        /check coverage was waived by the source stack .* but this stack does not waive it/.test(p),
      ),
    );
    assert.deepEqual(
      gatesProblems([wp], {
        ...expect,
        gates: { ...DEV_GATES, waive: { coverage: "legacy module without tests (ACME-1)" } },
      }),
      [],
    );
  });

  const provenance = (commit: string): unknown =>
    slsaProvenance({
      repository: "https://github.com/acme/shop-api",
      ref: "refs/heads/main",
      commit,
      dockerfile: "app/Dockerfile",
      platforms: ["linux/amd64"],
      baseImages: [{ ref: "ghcr.io/acme/node-base:22", digest: AMD64 }],
      stack: "dev",
      builder: "image-factory-dev-amd64",
      buildkitVersion: "v0.34.2",
      invocationId: "dev/x",
      startedOn: "2026-12-01T10:00:00Z",
      finishedOn: "2026-12-01T10:05:00Z",
    });

  it("provenanceProblems accepts the released commit and refuses another, naming both", () => {
    assert.deepEqual(provenanceProblems(DIGEST, [provenance(SHA)], SHA), []);
    const other = "f".repeat(40);
    const problems = provenanceProblems(DIGEST, [provenance(SHA)], other);
    assert.match(
      problems[0],
      new RegExp(
        `provenance \\(https://slsa.dev/provenance/v1\\) on ${DIGEST} names source commit "${SHA}", but this release is ${other}`,
      ),
    );
    assert.match(provenanceProblems(DIGEST, [], SHA)[0], /none verified/);
  });

  it("sbomProblems wants an SPDX document", () => {
    assert.deepEqual(
      sbomProblems("linux/amd64", AMD64, [{ spdxVersion: "SPDX-2.3", name: "x", packages: [] }]),
      [],
    );
    assert.match(
      sbomProblems("linux/amd64", AMD64, [{ bomFormat: "CycloneDX" }])[0],
      /SBOM attestation .* for linux\/amd64 on sha256:0101.*: the predicate is not an SPDX document/,
    );
  });
});
