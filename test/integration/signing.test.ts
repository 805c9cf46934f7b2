// evidence/signing against the real cosign (v3.1.3, $IF_CACHE/bin) and the real local TLS registry
// (127.0.0.1:5443, scripts/registry.sh + scripts/registry-tls.sh): sign, attest, verify, refuse.
// A missing cosign, crane, pulumi or registry FAILS these tests with the command that fixes it.
import * as assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  type CosignOptions,
  type ImageBundles,
  type SignOptions,
  attest,
  findCosign,
  sign,
  verify,
  verifyAttestation,
  withSigningSession,
} from "../../evidence/signing/cosign";
import {
  COSIGN_SIGN_PREDICATE_TYPE,
  PREDICATE_TYPES,
  gatesPredicate,
  slsaProvenance,
} from "../../evidence/signing/predicates";
import { REPO_ROOT, type RunResult } from "../e2e/lib/exec";
import { scratchPulumiProject } from "../e2e/lib/pulumiStack";
import { cacheDir } from "../e2e/lib/registry";

const IF_CACHE = cacheDir();
const REGISTRY = "127.0.0.1:5443";
const REPO = `${REGISTRY}/image-factory/signing-it`;
const CA = path.join(IF_CACHE, "registry-tls", "ca.pem");
const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

type Run = Pick<RunResult, "code" | "stdout" | "stderr">;

function exec(file: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Run {
  const r = childProcess.spawnSync(file, args, { env, input, encoding: "utf8", timeout: 600_000 });
  if (r.error) throw new Error(`${file} could not run: ${r.error.message}`);
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function p256(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

const hexOf = (digest: string): string => digest.slice("sha256:".length);

describe("evidence/signing with the real cosign and the local TLS registry", function () {
  this.timeout(600_000);

  let work: string;
  let tempRoot: string;
  let password: string;
  let crane: string;
  let craneEnv: NodeJS.ProcessEnv;
  let opts: CosignOptions;
  let key: { privateKeyPem: string; publicKeyPem: string };
  let signOpts: SignOptions;
  let imageA: string;
  const runId = crypto.randomBytes(4).toString("hex");
  const timings: Record<string, number> = {};

  /** Pushes a one-file image with random content (so its digest is new) and returns `<repo>@<digest>`. */
  function pushImage(tag: string): string {
    const dir = fs.mkdtempSync(path.join(work, "layer-"));
    fs.writeFileSync(path.join(dir, "payload.txt"), crypto.randomBytes(32).toString("hex"));
    const tar = path.join(work, `${tag}.tar`);
    const t = exec("tar", ["-C", dir, "-cf", tar, "payload.txt"], process.env);
    assert.equal(t.code, 0, t.stderr);
    const r = exec(
      crane,
      ["append", "-f", tar, "-t", `${REPO}:${tag}`, "--platform", "linux/amd64"],
      craneEnv,
    );
    assert.equal(r.code, 0, `crane append failed: ${r.stderr}`);
    const ref = r.stdout.trim();
    assert.match(ref, /^127\.0\.0\.1:5443\/image-factory\/signing-it@sha256:[0-9a-f]{64}$/);
    return ref;
  }

  function craneJson<T>(args: string[]): T {
    const r = exec(crane, args, craneEnv);
    assert.equal(r.code, 0, `crane ${args.join(" ")} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  before(async () => {
    findCosign(); // throws "cosign not found ... run scripts/install-go-tools.sh cosign"
    crane = path.join(IF_CACHE, "bin", "crane");
    if (!fs.existsSync(crane))
      throw new Error(`crane not found at ${crane}: run scripts/install-go-tools.sh crane`);
    const pwFile = path.join(IF_CACHE, "registry", "password");
    if (!fs.existsSync(pwFile) || !fs.existsSync(CA)) {
      throw new Error(
        `local registry not set up (${pwFile}, ${CA}): run scripts/registry.sh && scripts/registry-tls.sh`,
      );
    }
    password = fs.readFileSync(pwFile, "utf8").trim();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "if-signing-it-"));
    fs.mkdirSync(path.join(work, "docker"), { mode: 0o700 });
    fs.writeFileSync(
      path.join(work, "docker", "config.json"),
      JSON.stringify({
        auths: { [REGISTRY]: { auth: Buffer.from(`factory:${password}`).toString("base64") } },
      }),
      { mode: 0o600 },
    );
    craneEnv = {
      PATH: process.env.PATH,
      HOME: os.homedir(),
      DOCKER_CONFIG: path.join(work, "docker"),
      SSL_CERT_FILE: CA,
    };
    const probe = exec(crane, ["catalog", REGISTRY], craneEnv);
    if (probe.code !== 0)
      throw new Error(
        `registry ${REGISTRY} does not answer with the factory credentials: run scripts/registry.sh && scripts/registry-tls.sh\n${probe.stderr}`,
      );
    tempRoot = path.join(work, "cosign-runs");
    fs.mkdirSync(tempRoot, { mode: 0o700 });
    opts = {
      registry: { address: REGISTRY, username: "factory", password },
      caBundle: CA,
      tempRoot,
    };
    key = p256();
    signOpts = { ...opts, signer: { mode: "key", privateKeyPem: key.privateKeyPem } };
    imageA = pushImage(`${runId}-a`);
  });

  afterEach(() => {
    // Every operation, passed or failed, removes its key files, password-protected key and
    // registry credentials with its run directory.
    assert.deepEqual(fs.readdirSync(tempRoot), []);
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`      cosign timings (s): ${JSON.stringify(timings)}`);
  });

  it("signs by digest, stores a Sigstore bundle as an OCI referrer, and verifies with the public key", async () => {
    const digest = imageA.split("@")[1];
    const signed = await sign(imageA, signOpts);
    timings.sign = signed.seconds;
    assert.equal(signed.imageRef, imageA);
    assert.equal(signed.digest, digest);
    assert.equal(signed.predicateType, "https://sigstore.dev/cosign/sign/v1");
    assert.equal(signed.referrersTag, `${REPO}:sha256-${hexOf(digest)}`);
    assert.match(
      signed.signatureRef,
      /^127\.0\.0\.1:5443\/image-factory\/signing-it@sha256:[0-9a-f]{64}$/,
    );

    // distribution v3.1 has no referrers API: the OCI fallback tag lists the bundle, no `.sig` tag.
    const index = craneJson<{
      mediaType: string;
      manifests: Array<{ digest: string; artifactType: string }>;
    }>(["manifest", signed.referrersTag]);
    assert.equal(index.mediaType, "application/vnd.oci.image.index.v1+json");
    assert.deepEqual(
      index.manifests.map((m) => [m.digest, m.artifactType]),
      [[signed.signatureRef.split("@")[1], BUNDLE_MEDIA_TYPE]],
    );
    const tags = exec(crane, ["ls", REPO], craneEnv).stdout.split("\n");
    assert.equal(tags.includes(`sha256-${hexOf(digest)}.sig`), false);
    const bundle = craneJson<{
      subject: { digest: string };
      artifactType: string;
      layers: Array<{ mediaType: string }>;
    }>(["manifest", signed.signatureRef]);
    assert.equal(bundle.subject.digest, digest);
    assert.equal(bundle.artifactType, BUNDLE_MEDIA_TYPE);
    assert.deepEqual(
      bundle.layers.map((l) => l.mediaType),
      [BUNDLE_MEDIA_TYPE],
    );

    const verified = await verify(imageA, { publicKeyPem: key.publicKeyPem }, opts);
    timings.verify = verified.seconds;
    assert.equal(verified.statements.length, 1);
    assert.equal(verified.statements[0].predicateType, COSIGN_SIGN_PREDICATE_TYPE);
    assert.deepEqual(verified.statements[0].subject[0].digest, { sha256: hexOf(digest) });
  });

  it("refuses a signature checked against a different key, saying so", async () => {
    const other = p256();
    const digest = imageA.split("@")[1];
    await assert.rejects(verify(imageA, { publicKeyPem: other.publicKeyPem }, opts), (e: Error) => {
      assert.match(
        e.message,
        new RegExp(
          `^signature on ${digest} does not verify with the given key \\(cosign verify ${imageA.replace(/[.]/g, "\\.")}\\)`,
        ),
      );
      return true;
    });
  });

  it("attests SPDX, gates and SLSA provenance; verifyAttestation returns each predicate bound to the digest", async () => {
    const digest = imageA.split("@")[1];
    const spdx = {
      spdxVersion: "SPDX-2.3",
      dataLicense: "CC0-1.0",
      SPDXID: "SPDXRef-DOCUMENT",
      name: "signing-it",
      documentNamespace: `https://image-factory.dev/spdx/signing-it/${runId}`,
      creationInfo: { created: "2026-12-01T00:00:00Z", creators: ["Tool: syft-1.57.0"] },
      packages: [
        {
          SPDXID: "SPDXRef-Package-a",
          name: "a",
          versionInfo: "1.0.0",
          downloadLocation: "NOASSERTION",
        },
      ],
    };
    const gates = gatesPredicate({
      indexDigest: digest,
      platformDigests: { "linux/amd64": digest },
      sourceRevision: "0123456789abcdef0123456789abcdef01234567",
      repository: REPO,
      results: {
        passed: true,
        checks: [
          {
            gate: "imageSize[linux/amd64]",
            status: "passed",
            measured: 0.01,
            limit: 500,
            unit: "MB",
            detail: "measured 0.01 MB",
          },
          {
            gate: "criticalVulnerabilities[linux/amd64]",
            status: "waived",
            measured: null,
            limit: 0,
            unit: "",
            detail: "not run: no DB offline",
            waiver: "offline machine",
          },
        ],
        waived: { "criticalVulnerabilities[linux/amd64]": "offline machine" },
        notRun: [],
        tools: { syft: "1.57.0", trivy: "0.74.0" },
      },
      evaluatedAt: "2026-12-01T10:00:00Z",
    });
    const provenance = slsaProvenance({
      repository: "https://github.com/acme/image-factory",
      ref: "refs/heads/main",
      commit: "0123456789abcdef0123456789abcdef01234567",
      dockerfile: "app/Dockerfile",
      platforms: ["linux/amd64"],
      buildArgs: { NODE_VERSION: "22", NPM_TOKEN: "npm_should_never_appear" },
      baseImages: [
        { ref: "127.0.0.1:5000/image-factory/node-base:22", digest: `sha256:${"ab".repeat(32)}` },
      ],
      stack: "local",
      builder: "image-factory-local",
      buildkitVersion: "v0.34.2",
      invocationId: `local/${runId}`,
      startedOn: "2026-12-01T10:00:00Z",
      finishedOn: "2026-12-01T10:01:30Z",
    });
    const files = { spdxjson: spdx, gates, slsaprovenance1: provenance } as const;
    for (const [type, predicate] of Object.entries(files) as Array<[keyof typeof files, unknown]>) {
      const file = path.join(work, `${type}.json`);
      fs.writeFileSync(file, JSON.stringify(predicate));
      const r = await attest(imageA, { predicatePath: file, type }, signOpts);
      timings[`attest ${type}`] = r.seconds;
      assert.equal(r.predicateType, PREDICATE_TYPES[type]);
      assert.equal(r.referrersTag, `${REPO}:sha256-${hexOf(digest)}`);
    }
    for (const type of Object.keys(files) as Array<keyof typeof files>) {
      const v = await verifyAttestation(imageA, type, { publicKeyPem: key.publicKeyPem }, opts);
      timings[`verify-attestation ${type}`] = v.seconds;
      assert.equal(v.statements.length, 1, `${type}: one attestation`);
      const st = v.statements[0];
      assert.equal(st.predicateType, PREDICATE_TYPES[type]);
      assert.deepEqual(st.subject, [{ name: REPO, digest: { sha256: hexOf(digest) } }]);
      assert.deepEqual(
        st.predicate,
        JSON.parse(JSON.stringify(files[type])),
        `${type}: predicate round-trips`,
      );
    }
    // What the provenance carried, spelled out (a secret build argument never does).
    const prov = (
      await verifyAttestation(imageA, "slsaprovenance1", { publicKeyPem: key.publicKeyPem }, opts)
    ).statements[0].predicate as typeof provenance;
    assert.deepEqual(prov.buildDefinition.externalParameters.buildArgs, { NODE_VERSION: "22" });
    assert.deepEqual(prov.buildDefinition.resolvedDependencies, [
      {
        uri: "git+https://github.com/acme/image-factory@refs/heads/main",
        digest: { gitCommit: "0123456789abcdef0123456789abcdef01234567" },
      },
      { uri: "127.0.0.1:5000/image-factory/node-base:22", digest: { sha256: "ab".repeat(32) } },
    ]);
    assert.equal(prov.runDetails.builder.id, "local/image-factory-local");

    // The signature is still the only signature: attestations are not counted as one.
    const sigs = await verify(imageA, { publicKeyPem: key.publicKeyPem }, opts);
    assert.deepEqual(
      sigs.statements.map((s) => s.predicateType),
      [COSIGN_SIGN_PREDICATE_TYPE],
    );
  });

  it("does not take an attestation for a signature, and names a missing attestation type", async () => {
    const only = pushImage(`${runId}-attested-only`);
    const digest = only.split("@")[1];
    const file = path.join(work, "only.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        spdxVersion: "SPDX-2.3",
        SPDXID: "SPDXRef-DOCUMENT",
        name: "only",
        packages: [],
      }),
    );
    await attest(only, { predicatePath: file, type: "spdxjson" }, signOpts);
    await assert.rejects(verify(only, { publicKeyPem: key.publicKeyPem }, opts), (e: Error) => {
      assert.equal(
        e.message,
        `no signature on ${digest} (only attestations: https://spdx.dev/Document) (cosign verify ${only})`,
      );
      return true;
    });
    await assert.rejects(
      verifyAttestation(only, "gates", { publicKeyPem: key.publicKeyPem }, opts),
      (e: Error) => {
        assert.match(
          e.message,
          new RegExp(
            // cosign lists what it did find: here only the SBOM attestation.
            `^no gates attestation on ${digest} \\(found: https://spdx\\.dev/Document\\) \\(cosign verify-attestation `,
          ),
        );
        return true;
      },
    );
  });

  it("a tag re-pointed after signing does not carry the signature to the new digest", async () => {
    const tag = `${REPO}:${runId}-release`;
    const first = pushImage(`${runId}-release`);
    await sign(first, signOpts);
    const second = pushImage(`${runId}-release`); // same tag, new content
    const now = exec(crane, ["digest", tag], craneEnv).stdout.trim();
    assert.equal(`${REPO}@${now}`, second);
    assert.notEqual(second, first);
    await assert.rejects(
      verify(`${REPO}@${now}`, { publicKeyPem: key.publicKeyPem }, opts),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^no signature on ${now} \\(cosign verify `));
        return true;
      },
    );
    // The originally signed bytes still verify by their digest.
    const still = await verify(first, { publicKeyPem: key.publicKeyPem }, opts);
    assert.equal(still.statements[0].subject[0].digest.sha256, hexOf(first.split("@")[1]));
    // And a tag is never accepted where a digest is required.
    await assert.rejects(
      verify(tag, { publicKeyPem: key.publicKeyPem }, opts),
      /image reference must be pinned by digest \(<repo>@sha256:<64 hex>\), got "127\.0\.0\.1:5443\/image-factory\/signing-it:/,
    );
  });

  it("names an image that does not exist instead of reporting it unsigned", async () => {
    const missing = `${REPO}@sha256:${"0".repeat(64)}`;
    await assert.rejects(
      verify(missing, { publicKeyPem: key.publicKeyPem }, opts),
      /^Error: image 127\.0\.0\.1:5443\/image-factory\/signing-it@sha256:0{64} not found in the registry/,
    );
    await assert.rejects(
      sign(missing, signOpts),
      /^Error: image 127\.0\.0\.1:5443\/image-factory\/signing-it@sha256:0{64} not found in the registry/,
    );
  });

  it("keeps secrets off cosign's command line and out of its environment; key files are private and removed", async () => {
    // A wrapper in front of the real cosign records what each invocation received.
    const log = path.join(work, "wrapper.log");
    const wrapper = path.join(work, "cosign-wrapper.sh");
    fs.writeFileSync(
      wrapper,
      [
        "#!/bin/sh",
        `LOG='${log}'`,
        'printf "argv %s\\n" "$*" >>"$LOG"',
        'printf "env %s\\n" "$(env | cut -d= -f1 | sort | tr "\\n" " ")" >>"$LOG"',
        'for a in "$@"; do if [ -n "$COSIGN_PASSWORD" ] && [ "$a" = "$COSIGN_PASSWORD" ]; then echo "LEAK password on argv" >>"$LOG"; fi; done',
        'if [ -d key ]; then printf "perm %s\\n" "$(stat -c "%a:%n" . key key/* | tr "\\n" " ")" >>"$LOG"; fi',
        `exec '${findCosign()}' "$@"`,
      ].join("\n"),
      { mode: 0o700 },
    );
    const image = pushImage(`${runId}-wrapped`);
    const env = {
      ...process.env,
      PULUMI_ACCESS_TOKEN: "pul-leak",
      GITHUB_TOKEN: "ghs_leak",
      AWS_SECRET_ACCESS_KEY: "aws-leak",
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: "oidc-leak",
    };
    await sign(image, { ...signOpts, cosign: wrapper, env });
    await verify(image, { publicKeyPem: key.publicKeyPem }, { ...opts, cosign: wrapper, env });
    const text = fs.readFileSync(log, "utf8");
    assert.doesNotMatch(text, /LEAK/);
    assert.doesNotMatch(text, /PRIVATE KEY|pul-leak|ghs_leak|aws-leak|oidc-leak/);
    assert.equal(text.includes(password), false, "registry password on a command line");
    const envLines = text.split("\n").filter((l) => l.startsWith("env "));
    assert.ok(envLines.length >= 4, text);
    for (const l of envLines) {
      for (const name of l.slice(4).trim().split(" ")) {
        // PWD is set by the shell of the wrapper itself.
        assert.ok(
          ["PATH", "HOME", "SSL_CERT_FILE", "DOCKER_CONFIG", "COSIGN_PASSWORD", "PWD"].includes(
            name,
          ),
          `cosign saw ${name}`,
        );
      }
    }
    // When cosign signs, the plain PEM is gone and the imported key is 0600 in a 0700 directory.
    const signPerm = text
      .split("\n")
      .find((l, i, all) => l.startsWith("perm ") && all[i - 2]?.startsWith("argv sign "));
    assert.ok(signPerm, text);
    assert.match(signPerm, /^perm 700:\. 700:key 600:key\/cosign\.key 644:key\/cosign\.pub $/);
  });

  it("signs several images in one session: one key import for all (none when nothing is to be made), and no listing the caller already made", async () => {
    const log = path.join(work, "batch.log");
    const wrapper = path.join(work, "cosign-batch.sh");
    fs.writeFileSync(
      wrapper,
      ["#!/bin/sh", `printf "%s\\n" "$1" >>'${log}'`, `exec '${findCosign()}' "$@"`].join("\n"),
      { mode: 0o700 },
    );
    const [one, two] = [pushImage(`${runId}-batch-1`), pushImage(`${runId}-batch-2`)];
    const file = path.join(work, "batch-spdx.json");
    fs.writeFileSync(
      file,
      JSON.stringify({ spdxVersion: "SPDX-2.3", SPDXID: "SPDXRef-DOCUMENT", packages: [] }),
    );
    const images: ImageBundles[] = [
      // `one` as publish hands it over: listed already (nothing on it yet).
      { imageRef: one, requests: [undefined, { path: file, type: "spdxjson" }], before: [] },
      { imageRef: two, requests: [undefined] },
      { imageRef: imageA, requests: [] },
    ];
    const made = await withSigningSession({ ...signOpts, cosign: wrapper }, (sign) =>
      Promise.all(images.map(sign)),
    );
    const calls = fs.readFileSync(log, "utf8").trim().split("\n").sort();
    assert.deepEqual(calls, [
      "attest",
      "import-key-pair",
      "sign",
      "sign",
      "tree", // after `one`'s pieces
      "tree", // before `two`'s
      "tree", // after `two`'s
    ]);
    assert.deepEqual(
      made.map((r) => r.map((x) => [x.digest, x.predicateType])),
      [
        [
          [one.split("@")[1], COSIGN_SIGN_PREDICATE_TYPE],
          [one.split("@")[1], PREDICATE_TYPES.spdxjson],
        ],
        [[two.split("@")[1], COSIGN_SIGN_PREDICATE_TYPE]],
        [],
      ],
    );
    // Each bundle refers to its own image, and each image verifies with the one key.
    for (const [image, results] of [
      [one, made[0]],
      [two, made[1]],
    ] as const) {
      for (const r of results) {
        const m = craneJson<{ subject: { digest: string } }>(["manifest", r.signatureRef]);
        assert.equal(m.subject.digest, image.split("@")[1]);
      }
      const v = await verify(image, { publicKeyPem: key.publicKeyPem }, opts);
      assert.equal(v.statements.length, 1);
    }
    const spdx = await verifyAttestation(one, "spdxjson", { publicKeyPem: key.publicKeyPem }, opts);
    assert.equal(spdx.statements.length, 1);

    // Nothing to make: the key is never imported, no cosign runs at all.
    fs.rmSync(log);
    assert.deepEqual(
      await withSigningSession({ ...signOpts, cosign: wrapper }, (sign) =>
        sign({ imageRef: imageA, requests: [] }),
      ),
      [],
    );
    assert.equal(fs.existsSync(log), false, "cosign ran although nothing was to be signed");
  });

  it("refuses keyless signing without the transparency log, and a malformed KMS key URI, before running cosign", async () => {
    await assert.rejects(
      sign(imageA, { ...opts, signer: { mode: "keyless" } }),
      /^Error: keyless signing needs the transparency log \(tlog: true\)/,
    );
    await assert.rejects(
      sign(imageA, {
        ...opts,
        signer: { mode: "kms", keyRef: "arn:aws:kms:eu-west-1:123456789012:key/x" },
      }),
      /^Error: kms signing needs an AWS KMS key URI \(awskms:\/\/\/arn:aws:kms:/,
    );
    await assert.rejects(
      verify(
        imageA,
        {
          identity:
            "https://github.com/acme/image-factory/.github/workflows/main.yml@refs/heads/main",
          issuer: "https://token.actions.githubusercontent.com",
        },
        opts,
      ),
      /^Error: keyless verification needs the transparency log/,
    );
  });

  it("SigningKey in key mode under the real Pulumi engine: the private key is a secret in the state and cosign signs with it", async () => {
    const pulumi = path.join(IF_CACHE, "bin", "pulumi");
    const { dir, env } = scratchPulumiProject("signing-it");
    try {
      const component = path
        .relative(dir, path.join(REPO_ROOT, "components", "signing"))
        .split(path.sep)
        .join("/");
      fs.writeFileSync(
        path.join(dir, "index.ts"),
        `import { SigningKey } from "${component}";\nconst k = new SigningKey("images", { mode: "key" });\nexport const signing = k.signingExport;\nexport const privateKeyPem = k.privateKeyPem;\n`,
      );
      const inDir = (args: string[]): Run => exec(pulumi, ["--cwd", dir, ...args], env);
      const init = inDir(["stack", "init", "it", "--non-interactive"]);
      assert.equal(init.code, 0, init.stderr);
      const up = inDir(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "it"]);
      assert.equal(up.code, 0, `pulumi up failed:\n${up.stdout}\n${up.stderr}`);
      assert.match(
        up.stdout,
        /\+ {2}pulumi-nodejs:dynamic\/signing:EcdsaKeyPair images-keypair created/,
      );
      const out = JSON.parse(
        inDir(["stack", "output", "--json", "--show-secrets", "--stack", "it"]).stdout,
      ) as { signing: { mode: string; publicKey: string }; privateKeyPem: string };
      const shown = JSON.parse(inDir(["stack", "output", "--json", "--stack", "it"]).stdout) as {
        privateKeyPem: string;
      };
      assert.equal(shown.privateKeyPem, "[secret]");
      assert.equal(out.signing.mode, "key");
      assert.deepEqual(Object.keys(out.signing).sort(), ["mode", "publicKey"]);
      const pub = crypto.createPublicKey(out.signing.publicKey);
      assert.equal(pub.asymmetricKeyType, "ec");
      assert.equal(pub.asymmetricKeyDetails?.namedCurve, "prime256v1");
      // No plaintext private key anywhere in the backend (state, history, backups).
      const walk = (d: string): string[] =>
        fs
          .readdirSync(d, { withFileTypes: true })
          .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
      for (const f of walk(path.join(dir, "state"))) {
        const text = fs.readFileSync(f, "utf8");
        assert.equal(text.includes("PRIVATE KEY"), false, `plaintext private key in ${f}`);
      }
      // A second `up` changes nothing: the key pair is stable.
      const again = inDir(["preview", "--non-interactive", "--stack", "it", "--expect-no-changes"]);
      assert.equal(
        again.code,
        0,
        `preview after up shows changes:\n${again.stdout}\n${again.stderr}`,
      );

      const image = pushImage(`${runId}-stack-key`);
      await sign(image, { ...opts, signer: { mode: "key", privateKeyPem: out.privateKeyPem } });
      const v = await verify(image, { publicKeyPem: out.signing.publicKey }, opts);
      assert.equal(v.statements[0].subject[0].digest.sha256, hexOf(image.split("@")[1]));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
