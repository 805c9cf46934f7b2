// SigningKey under Pulumi mocks (kms, key, keyless), the pure parts of evidence/signing (predicate
// builders, cosign's allow-listed environment, digest references), and the admission policies in
// docs/signing.md checked against the predicate types the code signs.
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import {
  KEY_ADMIN_ACTIONS,
  SigningKey,
  type SigningExport,
  validateSigningKey,
} from "../../components/signing";
import { cosignEnv, parseDigestRef, referrersTagOf } from "../../evidence/signing/cosign";
import {
  BUILD_TYPE,
  COSIGN_SIGN_PREDICATE_TYPE,
  PREDICATE_TYPES,
  cosignType,
  gatesPredicate,
  slsaProvenance,
} from "../../evidence/signing/predicates";
import { type Registered, isSecretInput, recordingMocks, resolve } from "./harness";

const ACCOUNT = "123456789012";
const SIGNER = `arn:aws:iam::${ACCOUNT}:role/ci-deploy`;
const READER = `arn:aws:iam::${ACCOUNT}:role/auditor`;
const KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${KEY_ID}`;
const KMS_PUBLIC_PEM =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEkmsPUBLICKEYFROMKMS==\n-----END PUBLIC KEY-----\n";
const WORKFLOW = "https://github.com/acme/image-factory/.github/workflows/main.yml@refs/heads/main";
const ISSUER = "https://token.actions.githubusercontent.com";

const resources: Registered[] = [];
const calls: Array<{ token: string; inputs: Record<string, unknown> }> = [];
const generated = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });

async function useSigningMocks(): Promise<void> {
  await recordingMocks(
    { resources, calls },
    (args, inputs) => {
      switch (args.type) {
        case "aws:kms/key:Key":
          return { id: KEY_ID, state: { ...inputs, arn: KEY_ARN, keyId: KEY_ID } };
        case "aws:kms/alias:Alias":
          return {
            id: inputs.name as string,
            state: {
              ...inputs,
              arn: `arn:aws:kms:eu-west-1:${ACCOUNT}:${inputs.name as string}`,
            },
          };
        case "pulumi-nodejs:dynamic/signing:EcdsaKeyPair":
          // What the provider's create returns (the dynamic provider itself runs under the real
          // engine in test/integration/signing.test.ts).
          return {
            id: "keypair",
            state: {
              ...inputs,
              publicKeyPem: generated.publicKey.export({ type: "spki", format: "pem" }).toString(),
              privateKeyPem: generated.privateKey
                .export({ type: "pkcs8", format: "pem" })
                .toString(),
            },
          };
        default:
          return { id: `${args.name}-id`, state: inputs };
      }
    },
    (args, inputs) => {
      switch (args.token) {
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return {
            accountId: ACCOUNT,
            arn: `arn:aws:iam::${ACCOUNT}:user/ci`,
            userId: "AID",
            id: ACCOUNT,
          };
        case "aws:index/getPartition:getPartition":
          return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
        case "aws:kms/getPublicKey:getPublicKey":
          return {
            keyId: inputs.keyId,
            arn: KEY_ARN,
            id: KEY_ARN,
            publicKeyPem: KMS_PUBLIC_PEM,
            customerMasterKeySpec: "ECC_NIST_P256",
            keyUsage: "SIGN_VERIFY",
          };
        default:
          return inputs;
      }
    },
  );
}

interface Statement {
  Sid: string;
  Effect: string;
  Principal: { AWS: string | string[] } | string;
  Action: string | string[];
  Resource: string;
  Condition?: unknown;
}
const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const principalsOf = (s: Statement): string[] =>
  typeof s.Principal === "string" ? [s.Principal] : ([] as string[]).concat(s.Principal.AWS);

describe("SigningKey (mocks)", () => {
  beforeEach(async () => {
    resources.length = 0;
    calls.length = 0;
    await useSigningMocks();
  });

  it("kms: an ECC_NIST_P256 SIGN_VERIFY key whose policy lets only the signer role sign, with no kms:* and no Principal *", async () => {
    const k = new SigningKey("images", {
      mode: "kms",
      signerRoleArns: [SIGNER],
      readerRoleArns: [READER],
    });
    const exp = await resolve(k.signingExport);
    const [key] = resources.filter((r) => r.type === "aws:kms/key:Key");
    assert.equal(key.name, "images-key");
    assert.equal(key.inputs.customerMasterKeySpec, "ECC_NIST_P256");
    assert.equal(key.inputs.keyUsage, "SIGN_VERIFY");
    assert.equal(key.inputs.enableKeyRotation, false);
    assert.equal(key.inputs.deletionWindowInDays, 30);

    const policy = JSON.parse(key.inputs.policy as string) as {
      Version: string;
      Statement: Statement[];
    };
    assert.equal(policy.Version, "2012-10-17");
    assert.deepEqual(
      policy.Statement.map((s) => s.Sid),
      ["AccountAdministersWithoutUse", "SignersSign", "ReadersVerify"],
    );
    for (const s of policy.Statement) {
      assert.equal(s.Effect, "Allow");
      assert.equal(actionsOf(s).includes("kms:*"), false, `${s.Sid} grants kms:*`);
      assert.equal(
        actionsOf(s).some((a) => a.includes("*")),
        false,
        `${s.Sid} has a wildcard action`,
      );
      assert.notEqual(s.Principal, "*");
      assert.equal(principalsOf(s).includes("*"), false, `${s.Sid} names Principal *`);
    }
    const signing = policy.Statement.filter((s) => actionsOf(s).includes("kms:Sign"));
    assert.deepEqual(
      signing.map((s) => [s.Sid, principalsOf(s)]),
      [["SignersSign", [SIGNER]]],
    );
    const bySid = Object.fromEntries(policy.Statement.map((s) => [s.Sid, s]));
    assert.deepEqual(actionsOf(bySid.SignersSign), [
      "kms:Sign",
      "kms:GetPublicKey",
      "kms:DescribeKey",
    ]);
    assert.deepEqual(bySid.SignersSign.Condition, {
      StringEquals: { "kms:SigningAlgorithm": "ECDSA_SHA_256" },
    });
    assert.deepEqual(principalsOf(bySid.ReadersVerify), [READER]);
    assert.deepEqual(actionsOf(bySid.ReadersVerify), [
      "kms:GetPublicKey",
      "kms:Verify",
      "kms:DescribeKey",
    ]);
    assert.deepEqual(principalsOf(bySid.AccountAdministersWithoutUse), [
      `arn:aws:iam::${ACCOUNT}:root`,
    ]);
    assert.deepEqual(actionsOf(bySid.AccountAdministersWithoutUse), KEY_ADMIN_ACTIONS);
    for (const use of [
      "kms:Sign",
      "kms:Verify",
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:GenerateDataKey",
      "kms:CreateGrant",
    ]) {
      assert.equal(
        actionsOf(bySid.AccountAdministersWithoutUse).includes(use),
        false,
        `root may ${use}`,
      );
    }

    const [alias] = resources.filter((r) => r.type === "aws:kms/alias:Alias");
    assert.equal(alias.name, "images-alias");
    assert.equal(alias.inputs.name, "alias/image-factory-dev-images");
    assert.equal(alias.inputs.targetKeyId, KEY_ID);
    assert.deepEqual(
      calls
        .filter((c) => c.token === "aws:kms/getPublicKey:getPublicKey")
        .map((c) => c.inputs.keyId),
      [KEY_ARN],
    );
    assert.equal(await resolve(k.keyRef as pulumi.Output<string>), `awskms:///${KEY_ARN}`);
    assert.deepEqual(exp, {
      mode: "kms",
      keyRef: `awskms:///${KEY_ARN}`,
      keyArn: KEY_ARN,
      alias: "alias/image-factory-dev-images",
      publicKey: KMS_PUBLIC_PEM,
    } satisfies SigningExport);
    assert.equal(k.privateKeyPem, undefined);
  });

  it("kms: signer roles must be given, and must be role ARNs (errors name the key and the value)", () => {
    assert.throws(() => new SigningKey("k", { mode: "kms" }), {
      message:
        "signing.signerRoleArns must name at least one role in kms mode (the CI deploy role that signs), got none",
    });
    assert.throws(() => validateSigningKey({ mode: "kms", signerRoleArns: ["*"] }), {
      message:
        'signing.signerRoleArns[0] must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "*"',
    });
    assert.throws(
      () =>
        validateSigningKey({
          mode: "kms",
          signerRoleArns: [SIGNER],
          readerRoleArns: [`arn:aws:iam::${ACCOUNT}:root`],
        }),
      {
        message: `signing.readerRoleArns[0] must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "arn:aws:iam::${ACCOUNT}:root"`,
      },
    );
    assert.throws(
      () => validateSigningKey({ mode: "kms", signerRoleArns: [SIGNER], deletionWindowInDays: 3 }),
      {
        message: "signing.deletionWindowInDays must be an integer from 7 to 30, got 3",
      },
    );
    assert.throws(() => validateSigningKey({ mode: "gpg" as never }), {
      message: 'signing.mode must be one of kms, key, keyless, got "gpg"',
    });
  });

  it("kms: no reader statement when there are no readers", async () => {
    const k = new SigningKey("images", { mode: "kms", signerRoleArns: [pulumi.output(SIGNER)] });
    await resolve(k.signingExport); // the key is registered once its policy resolved
    const [key] = resources.filter((r) => r.type === "aws:kms/key:Key");
    const policy = JSON.parse(key.inputs.policy as string) as { Statement: Statement[] };
    assert.deepEqual(
      policy.Statement.map((s) => s.Sid),
      ["AccountAdministersWithoutUse", "SignersSign"],
    );
  });

  it("key: an ECDSA P-256 key pair whose private key is a secret and is not exported", async () => {
    const k = new SigningKey("images", { mode: "key" });
    const exp = await resolve(k.signingExport);
    const [pair] = resources.filter((r) => r.type === "pulumi-nodejs:dynamic/signing:EcdsaKeyPair");
    assert.equal(pair.name, "images-keypair");
    assert.equal(pair.inputs.algorithm, "ECDSA");
    assert.equal(pair.inputs.ecdsaCurve, "P256");
    assert.equal(
      resources.some((r) => r.type.startsWith("aws:")),
      false,
    );
    assert.equal(await pulumi.isSecret(k.privateKeyPem as pulumi.Output<string>), true);
    const priv = crypto.createPrivateKey(await resolve(k.privateKeyPem as pulumi.Output<string>));
    assert.equal(priv.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.deepEqual(exp, {
      mode: "key",
      publicKey: generated.publicKey.export({ type: "spki", format: "pem" }).toString(),
    });
    assert.equal(await pulumi.isSecret(k.signingExport), false);
    assert.equal(JSON.stringify(exp).includes("PRIVATE"), false);
  });

  it("keyless: outputs the identity and issuer, creates nothing, and rejects an identity that is not a workflow ref", async () => {
    const k = new SigningKey("images", {
      mode: "keyless",
      identity: { workflowRef: WORKFLOW, issuer: ISSUER },
    });
    assert.equal(await resolve(k.identity as pulumi.Output<string>), WORKFLOW);
    assert.equal(await resolve(k.issuer as pulumi.Output<string>), ISSUER);
    assert.deepEqual(await resolve(k.signingExport), {
      mode: "keyless",
      identity: WORKFLOW,
      issuer: ISSUER,
    });
    assert.deepEqual(
      resources.map((r) => r.type),
      ["image-factory:signing:SigningKey"],
    );
    assert.equal(k.publicKeyPem, undefined);
    assert.throws(() => validateSigningKey({ mode: "keyless" }), {
      message:
        "signing.identity must be set in keyless mode ({ workflowRef, issuer }), got nothing",
    });
    assert.throws(
      () =>
        validateSigningKey({
          mode: "keyless",
          identity: { workflowRef: "ci@acme.example", issuer: ISSUER },
        }),
      {
        message:
          'signing.identity.workflowRef must be the workflow\'s certificate identity, https://github.com/<owner>/<repo>/.github/workflows/<file>.yml@refs/heads/<branch>, got "ci@acme.example"',
      },
    );
    assert.throws(
      () =>
        validateSigningKey({
          mode: "keyless",
          identity: { workflowRef: WORKFLOW, issuer: "token.actions.githubusercontent.com" },
        }),
      {
        message:
          'signing.identity.issuer must be an https OIDC issuer URL, got "token.actions.githubusercontent.com"',
      },
    );
  });

  it("no resource receives the private key (or any secret) as an input", async () => {
    const k = new SigningKey("images", { mode: "key" });
    await resolve(k.signingExport);
    const comp = resources.find((r) => r.type === "image-factory:signing:SigningKey");
    assert.ok(comp);
    // The private key Output is never an input of anything registered.
    for (const r of resources) {
      for (const v of Object.values(r.inputs))
        assert.equal(isSecretInput(v), false, `${r.type} ${r.name} got a secret input`);
    }
  });
});

describe("evidence/signing predicates", () => {
  const digest = (c: string): string => `sha256:${c.repeat(64)}`;

  it("gatesPredicate binds the results to the digests and commit, keeping reasons for non-passed checks", () => {
    const p = gatesPredicate({
      indexDigest: digest("a"),
      platformDigests: { "linux/arm64": digest("c"), "linux/amd64": digest("b") },
      sourceRevision: "f".repeat(40),
      repository: "127.0.0.1:5443/image-factory/shop-api",
      results: {
        passed: false,
        checks: [
          {
            gate: "imageSize[linux/amd64]",
            status: "passed",
            measured: 140.03,
            limit: 500,
            unit: "MB",
            detail: "measured 140.03 MB",
          },
          {
            gate: "coverage",
            status: "failed",
            measured: 71.5,
            limit: 80,
            unit: "%",
            detail: "measured 71.5 %, limit at least 80 % (gates.minCoverage)",
          },
          {
            gate: "efficiency[linux/amd64]",
            status: "not-run",
            measured: null,
            limit: 0.95,
            unit: "",
            detail: "not run: dive missing",
          },
          {
            gate: "criticalVulnerabilities[linux/amd64]",
            status: "waived",
            measured: null,
            limit: 0,
            unit: "",
            detail: "waived (offline); not run",
            waiver: "offline",
          },
        ],
        waived: { "criticalVulnerabilities[linux/amd64]": "offline" },
        notRun: ["efficiency[linux/amd64]"],
        tools: { syft: "1.57.0", dive: "0.13.1" },
      },
      evaluatedAt: "2026-12-01T10:00:00Z",
    });
    assert.deepEqual(p, {
      indexDigest: digest("a"),
      platformDigests: { "linux/amd64": digest("b"), "linux/arm64": digest("c") },
      sourceRevision: "f".repeat(40),
      repository: "127.0.0.1:5443/image-factory/shop-api",
      passed: false,
      checks: [
        {
          name: "imageSize[linux/amd64]",
          status: "passed",
          measured: 140.03,
          limit: 500,
          unit: "MB",
        },
        {
          name: "coverage",
          status: "failed",
          measured: 71.5,
          limit: 80,
          unit: "%",
          reason: "measured 71.5 %, limit at least 80 % (gates.minCoverage)",
        },
        {
          name: "efficiency[linux/amd64]",
          status: "not-run",
          measured: null,
          limit: 0.95,
          reason: "not run: dive missing",
        },
        {
          name: "criticalVulnerabilities[linux/amd64]",
          status: "waived",
          measured: null,
          limit: 0,
          reason: "offline",
        },
      ],
      waived: { "criticalVulnerabilities[linux/amd64]": "offline" },
      notRun: ["efficiency[linux/amd64]"],
      tools: { syft: "1.57.0", dive: "0.13.1" },
      evaluatedAt: "2026-12-01T10:00:00Z",
    });
  });

  it("gatesPredicate refuses unbound or malformed subjects", () => {
    const base = {
      indexDigest: digest("a"),
      platformDigests: { "linux/amd64": digest("b") },
      sourceRevision: "f".repeat(40),
      repository: "ghcr.io/acme/shop-api",
      results: { passed: true, checks: [], waived: {}, notRun: [], tools: {} },
    };
    assert.throws(() => gatesPredicate({ ...base, indexDigest: "latest" }), {
      message:
        'gates predicate: indexDigest must be a sha256 digest (sha256:<64 hex>), got "latest"',
    });
    assert.throws(() => gatesPredicate({ ...base, platformDigests: {} }), {
      message: "gates predicate: platformDigests must name at least one platform",
    });
    assert.throws(() => gatesPredicate({ ...base, sourceRevision: "abc1234" }), {
      message: 'gates predicate: sourceRevision must be a full git commit (40 hex), got "abc1234"',
    });
    assert.throws(() => gatesPredicate({ ...base, repository: "ghcr.io/acme/shop-api:1.2.3" }), {
      message:
        'gates predicate: repository must have no tag or digest, got "ghcr.io/acme/shop-api:1.2.3"',
    });
    assert.equal(
      gatesPredicate({ ...base, repository: "127.0.0.1:5443/image-factory/app" }).repository,
      "127.0.0.1:5443/image-factory/app",
    );
  });

  it("slsaProvenance fills SLSA v1 and leaves secret build arguments out", () => {
    const p = slsaProvenance({
      repository: "https://github.com/acme/image-factory",
      ref: "refs/tags/v1.2.3",
      commit: "e".repeat(40),
      dockerfile: "app/Dockerfile",
      platforms: ["linux/amd64", "linux/arm64"],
      buildArgs: {
        NODE_VERSION: "22",
        GITHUB_TOKEN: "ghs_x",
        NPM_AUTH: "y",
        SIGNING_KEY: "z",
        CUSTOM: "hidden",
        APP_VERSION: "1.2.3",
      },
      secretBuildArgs: ["CUSTOM"],
      baseImages: [{ ref: "ghcr.io/acme/node-base:22", digest: digest("d") }],
      stack: "prod",
      builder: "image-factory-prod-arm64",
      buildkitVersion: "v0.34.2",
      invocationId: "https://github.com/acme/image-factory/actions/runs/1",
      startedOn: new Date("2026-12-01T10:00:00Z"),
      finishedOn: "2026-12-01T10:05:00Z",
    });
    assert.deepEqual(p, {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          repository: "https://github.com/acme/image-factory",
          ref: "refs/tags/v1.2.3",
          commit: "e".repeat(40),
          dockerfile: "app/Dockerfile",
          platforms: ["linux/amd64", "linux/arm64"],
          buildArgs: { APP_VERSION: "1.2.3", NODE_VERSION: "22" },
        },
        internalParameters: { stack: "prod" },
        resolvedDependencies: [
          {
            uri: "git+https://github.com/acme/image-factory@refs/tags/v1.2.3",
            digest: { gitCommit: "e".repeat(40) },
          },
          { uri: "ghcr.io/acme/node-base:22", digest: { sha256: "d".repeat(64) } },
        ],
      },
      runDetails: {
        builder: { id: "prod/image-factory-prod-arm64", version: { buildkit: "v0.34.2" } },
        metadata: {
          invocationId: "https://github.com/acme/image-factory/actions/runs/1",
          startedOn: "2026-12-01T10:00:00Z",
          finishedOn: "2026-12-01T10:05:00Z",
        },
      },
    });
    assert.equal(BUILD_TYPE, "https://image-factory.dev/buildkit/v1");
  });

  it("slsaProvenance refuses incomplete input", () => {
    const ok = {
      repository: "https://github.com/acme/image-factory",
      ref: "refs/heads/main",
      commit: "e".repeat(40),
      dockerfile: "app/Dockerfile",
      platforms: ["linux/amd64"],
      baseImages: [{ ref: "ghcr.io/acme/node-base:22", digest: digest("d") }],
      stack: "dev",
      builder: "b",
      buildkitVersion: "v0.34.2",
      invocationId: "i",
      startedOn: "2026-12-01T10:00:00Z",
      finishedOn: "2026-12-01T10:05:00Z",
    };
    assert.throws(() => slsaProvenance({ ...ok, baseImages: [] }), {
      message: "provenance: baseImages must name the base image(s) the build resolved",
    });
    assert.throws(
      () =>
        slsaProvenance({
          ...ok,
          baseImages: [{ ref: `ghcr.io/acme/node-base@${digest("d")}`, digest: digest("d") }],
        }),
      {
        message: `provenance: baseImages[0].ref must not carry a digest (give it in digest), got "ghcr.io/acme/node-base@${digest("d")}"`,
      },
    );
    assert.throws(() => slsaProvenance({ ...ok, finishedOn: "2026-12-01T09:00:00Z" }), {
      message:
        "provenance: finishedOn (2026-12-01T09:00:00Z) is before startedOn (2026-12-01T10:00:00Z)",
    });
    // Milliseconds survive (protobuf's JSON form prints 3 digits then); ordering is by time, not text.
    const ms = slsaProvenance({
      ...ok,
      startedOn: "2026-12-01T10:00:00Z",
      finishedOn: "2026-12-01T10:00:00.250Z",
    });
    assert.deepEqual(
      [ms.runDetails.metadata.startedOn, ms.runDetails.metadata.finishedOn],
      ["2026-12-01T10:00:00Z", "2026-12-01T10:00:00.250Z"],
    );
    assert.throws(() => slsaProvenance({ ...ok, commit: "HEAD" }), {
      message: 'provenance: commit must be a full git commit (40 hex), got "HEAD"',
    });
  });

  it("predicate type URIs and cosign --type names", () => {
    assert.deepEqual(PREDICATE_TYPES, {
      spdxjson: "https://spdx.dev/Document",
      slsaprovenance1: "https://slsa.dev/provenance/v1",
      gates: "https://image-factory.dev/gates/v1",
    });
    assert.equal(COSIGN_SIGN_PREDICATE_TYPE, "https://sigstore.dev/cosign/sign/v1");
    assert.deepEqual(
      (Object.keys(PREDICATE_TYPES) as Array<keyof typeof PREDICATE_TYPES>).map(cosignType),
      ["spdxjson", "slsaprovenance1", "https://image-factory.dev/gates/v1"],
    );
  });
});

describe("evidence/signing cosign helpers", () => {
  const callerEnv: NodeJS.ProcessEnv = {
    PATH: "/usr/bin",
    HOME: "/root",
    SSL_CERT_FILE: "/ca.pem",
    DOCKER_CONFIG: "/docker",
    PULUMI_ACCESS_TOKEN: "pul-x",
    PULUMI_CONFIG_PASSPHRASE: "pp",
    GITHUB_TOKEN: "ghs-x",
    AWS_ACCESS_KEY_ID: "AKIA",
    AWS_SECRET_ACCESS_KEY: "s",
    AWS_REGION: "eu-west-1",
    ACTIONS_ID_TOKEN_REQUEST_URL: "https://token.example",
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: "t",
    NODE_OPTIONS: "--require evil",
  };

  it("cosign sees only the allow-listed environment: AWS_* only for kms, ACTIONS_ID_TOKEN_* only for keyless", () => {
    assert.deepEqual(cosignEnv({}, callerEnv, { COSIGN_PASSWORD: "p" }), {
      PATH: "/usr/bin",
      HOME: "/root",
      SSL_CERT_FILE: "/ca.pem",
      DOCKER_CONFIG: "/docker",
      COSIGN_PASSWORD: "p",
    });
    assert.deepEqual(Object.keys(cosignEnv({ kms: true }, callerEnv, {})).sort(), [
      "AWS_ACCESS_KEY_ID",
      "AWS_REGION",
      "AWS_SECRET_ACCESS_KEY",
      "DOCKER_CONFIG",
      "HOME",
      "PATH",
      "SSL_CERT_FILE",
    ]);
    assert.deepEqual(Object.keys(cosignEnv({ keyless: true }, callerEnv, {})).sort(), [
      "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
      "ACTIONS_ID_TOKEN_REQUEST_URL",
      "DOCKER_CONFIG",
      "HOME",
      "PATH",
      "SSL_CERT_FILE",
    ]);
    // The session's own files win over the caller's.
    assert.equal(
      cosignEnv({}, callerEnv, { DOCKER_CONFIG: "/run/docker" }).DOCKER_CONFIG,
      "/run/docker",
    );
  });

  it("image references must be pinned by digest; the referrers fallback tag is derived from the digest", () => {
    const d = `sha256:${"a".repeat(64)}`;
    assert.deepEqual(parseDigestRef(`127.0.0.1:5443/image-factory/app@${d}`), {
      repository: "127.0.0.1:5443/image-factory/app",
      digest: d,
      ref: `127.0.0.1:5443/image-factory/app@${d}`,
    });
    assert.deepEqual(parseDigestRef(`ghcr.io/acme/shop-api:1.2.3@${d}`), {
      repository: "ghcr.io/acme/shop-api",
      digest: d,
      ref: `ghcr.io/acme/shop-api@${d}`,
    });
    assert.throws(() => parseDigestRef("ghcr.io/acme/shop-api:latest"), {
      message:
        'image reference must be pinned by digest (<repo>@sha256:<64 hex>), got "ghcr.io/acme/shop-api:latest"',
    });
    assert.equal(
      referrersTagOf("ghcr.io/acme/shop-api", d),
      `ghcr.io/acme/shop-api:sha256-${"a".repeat(64)}`,
    );
  });
});

describe("docs/signing.md admission policies", () => {
  const doc = fs.readFileSync(path.resolve(__dirname, "../../docs/signing.md"), "utf8");
  const yamlBlocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  const manifests = yamlBlocks.flatMap((b) =>
    parseAllDocuments(b).map((d) => d.toJS() as Record<string, unknown>),
  );
  const expected = Object.values(PREDICATE_TYPES).sort();

  type CipAuthority = {
    signatureFormat?: string;
    key?: unknown;
    keyless?: { identities: Array<{ issuer: string; subject: string }> };
    attestations: Array<{ predicateType: string }>;
  };
  type KyvernoRule = {
    verifyImages: Array<{
      type: string;
      attestors: Array<{ entries: Array<{ keyless?: { issuer: string; subject: string } }> }>;
      attestations: Array<{ type: string }>;
    }>;
  };

  it("has a policy-controller ClusterImagePolicy and a Kyverno ClusterPolicy, key and keyless each", () => {
    assert.deepEqual(
      manifests.map((m) => `${m.kind as string}/${(m.metadata as { name: string }).name}`),
      [
        "ClusterImagePolicy/image-factory-shop-api",
        "ClusterImagePolicy/image-factory-shop-api-keyless",
        "ClusterPolicy/image-factory-shop-api",
        "ClusterPolicy/image-factory-shop-api-keyless",
      ],
    );
  });

  it("the ClusterImagePolicies require exactly the predicate types the code attests, as Sigstore bundles", () => {
    for (const m of manifests.filter((x) => x.kind === "ClusterImagePolicy")) {
      const authorities = (m.spec as { authorities: CipAuthority[] }).authorities;
      for (const a of authorities) {
        assert.equal(a.signatureFormat, "bundle");
        assert.deepEqual(a.attestations.map((x) => x.predicateType).sort(), expected);
      }
    }
  });

  it("the Kyverno policies require exactly the predicate types the code attests, as Sigstore bundles", () => {
    for (const m of manifests.filter((x) => x.kind === "ClusterPolicy")) {
      for (const rule of (m.spec as { rules: KyvernoRule[] }).rules) {
        for (const v of rule.verifyImages) {
          assert.equal(v.type, "SigstoreBundle");
          assert.deepEqual(v.attestations.map((x) => x.type).sort(), expected);
        }
      }
    }
  });

  it("keyless policies and the verify commands name the identity SigningKey accepts", () => {
    const idents: Array<{ issuer: string; subject: string }> = [];
    for (const m of manifests) {
      if (m.kind === "ClusterImagePolicy") {
        for (const a of (m.spec as { authorities: CipAuthority[] }).authorities)
          idents.push(...(a.keyless?.identities ?? []));
      } else {
        for (const rule of (m.spec as { rules: KyvernoRule[] }).rules) {
          for (const v of rule.verifyImages)
            for (const at of v.attestors)
              for (const e of at.entries) if (e.keyless) idents.push(e.keyless);
        }
      }
    }
    assert.deepEqual(idents, [
      { issuer: ISSUER, subject: WORKFLOW },
      { issuer: ISSUER, subject: WORKFLOW },
    ]);
    validateSigningKey({ mode: "keyless", identity: { workflowRef: WORKFLOW, issuer: ISSUER } });
    assert.ok(doc.includes(`ID=${WORKFLOW}\nISS=${ISSUER}\n`));
    // Every verify-attestation command uses a --type that maps to one of the predicate types.
    const types = [...doc.matchAll(/verify-attestation [^\n]*--type (\S+)/g)].map((m) => m[1]);
    assert.equal(types.length, 9);
    for (const t of types)
      assert.ok(
        (Object.values(PREDICATE_TYPES) as string[]).includes(t) || t in PREDICATE_TYPES,
        t,
      );
  });
});
