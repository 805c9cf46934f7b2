// `npm run evidence -- --image <repo@digest> [...]`: the evidence engine without Pulumi. Prints the
// run's JSON (gate results bound to the digests judged, SBOM locations, per-platform figures) on
// stdout; exits 0 when every gate passed, 1 when a gate failed, 2 when the run itself could not
// happen (bad arguments, registry unreachable). The stack's SupplyChainEvidence runs this same
// entry with `--request`, so what CI or a person runs is what `pulumi up` runs.
//
// The registry password is read from IMAGE_FACTORY_REGISTRY_TOKEN only: never a flag (it would be
// visible in the process list) and never a file.
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { DEFAULT_GATES, formatGateFailures, validateGates } from "./gates";
import { indexPlatforms, probeInsecure, registryOf } from "./oci";
import { type PublishRequest, publish } from "./publish";
import { type EvidenceRequest, runEvidence } from "./run";
import { type VerifyRequest, VerificationError, verifyRelease } from "./verify";

export const TOKEN_ENV = "IMAGE_FACTORY_REGISTRY_TOKEN";
/** key mode's private key for `publish`: only ever from the environment (never a flag or a file). */
export const SIGNING_KEY_ENV = "IMAGE_FACTORY_SIGNING_KEY";

const USAGE = `usage: npm run evidence -- --image <repo@sha256:…> [options]
       npm run evidence -- --request <request.json>
       npm run evidence -- publish --request <publish.json>   (verify the binding, sign and attest, then move the tags)
       npm run evidence -- verify --image <repo@sha256:…> --commit <sha> (--public-key <file> | --identity <id> --issuer <url>)
                              [--gates <json>] [--tlog] [--username <user>]   or   verify --request <verify.json>
                                (what promotion checks: signature, gates, SBOM and provenance attestations;
                                 exit 0 verified, 1 refused, 2 could not check)
  --image <repo@digest>         a manifest list (every platform in it is judged) or, with --platform, one image
  --platform <os/arch[/v]>      the platform of a single-image --image
  --source-revision <sha>       commit the image was built from (default: the image's org.opencontainers.image.revision is not read; say it)
  --dockerfile <path>           default app/Dockerfile
  --context <dir>               default: the Dockerfile's folder
  --coverage-image <ref@digest> the coverage stage's image, or
  --coverage-summary <file>     a c8/istanbul json-summary
  --gates <json>                gate limits and waivers (default: the factory's defaults)
  --db-repository <ref>         Trivy vulnerability DB artifact (default: Trivy's public DB)
  --out <dir>                   evidence folder (default .local/evidence/cli)
  --sbom-store file|oci         default file
  --username <user>             registry user; the password comes from $${TOKEN_ENV}`;

function fail(message: string): never {
  process.stderr.write(`evidence: ${message}\n${USAGE}\n`);
  process.exit(2);
}

export async function requestFromArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<EvidenceRequest> {
  const { values } = parseArgs({
    args: argv,
    options: {
      request: { type: "string" },
      image: { type: "string" },
      platform: { type: "string" },
      "source-revision": { type: "string" },
      dockerfile: { type: "string" },
      context: { type: "string" },
      "coverage-image": { type: "string" },
      "coverage-summary": { type: "string" },
      gates: { type: "string" },
      "db-repository": { type: "string" },
      out: { type: "string" },
      "sbom-store": { type: "string" },
      username: { type: "string" },
    },
    strict: true,
  });
  const token = env[TOKEN_ENV];
  if (values.request !== undefined) {
    const req = JSON.parse(fs.readFileSync(values.request, "utf8")) as EvidenceRequest;
    return { ...req, registryToken: token };
  }
  const image = values.image ?? fail("--image or --request is required");
  const m = /^(.+)@(sha256:[0-9a-f]{64})$/.exec(image);
  if (m === null)
    fail(`--image must be <repository>@sha256:<64 hex>, got ${JSON.stringify(image)}`);
  const [, imageName, digest] = m;
  let platformDigests: Record<string, string>;
  if (values.platform !== undefined) {
    platformDigests = { [values.platform]: digest };
  } else {
    const registry = registryOf(imageName);
    platformDigests = await indexPlatforms(
      {
        registry,
        username: values.username,
        password: token,
        insecure: await probeInsecure(registry),
      },
      image,
    );
  }
  const sbomStore = values["sbom-store"] ?? "file";
  if (sbomStore !== "file" && sbomStore !== "oci")
    fail(`--sbom-store must be file or oci, got ${JSON.stringify(sbomStore)}`);
  let gates = { ...DEFAULT_GATES };
  if (values.gates !== undefined) {
    try {
      gates = validateGates(JSON.parse(values.gates), "--gates");
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
  }
  const dockerfile = values.dockerfile ?? "app/Dockerfile";
  return {
    imageName,
    platformDigests,
    sourceRevision: values["source-revision"] ?? "unknown",
    dockerfile,
    contextDir: values.context ?? dockerfile.replace(/\/?[^/]*$/, "") ?? ".",
    coverageImage: values["coverage-image"],
    coverageSummaryPath: values["coverage-summary"],
    gates,
    outputDir: values.out ?? ".local/evidence/cli",
    sbomStore,
    vulnDb: { repository: values["db-repository"] },
    registryUsername: values.username,
    registryToken: token,
  };
}

/** `verify` arguments → a VerifyRequest (the token from the environment only). */
export function verifyRequestFromArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): VerifyRequest {
  const { values } = parseArgs({
    args: argv,
    options: {
      request: { type: "string" },
      image: { type: "string" },
      commit: { type: "string" },
      "public-key": { type: "string" },
      identity: { type: "string" },
      issuer: { type: "string" },
      gates: { type: "string" },
      tlog: { type: "boolean" },
      username: { type: "string" },
    },
    strict: true,
  });
  const token = env[TOKEN_ENV];
  if (values.request !== undefined) {
    const req = JSON.parse(fs.readFileSync(values.request, "utf8")) as VerifyRequest;
    return { ...req, registryToken: token };
  }
  const image = values.image ?? fail("verify needs --image <repo@sha256:…> (or --request <file>)");
  const m = /^(.+)@(sha256:[0-9a-f]{64})$/.exec(image);
  if (m === null)
    fail(`--image must be <repository>@sha256:<64 hex>, got ${JSON.stringify(image)}`);
  const trust =
    values["public-key"] !== undefined
      ? { publicKeyPem: fs.readFileSync(values["public-key"], "utf8") }
      : values.identity !== undefined && values.issuer !== undefined
        ? { identity: values.identity, issuer: values.issuer }
        : fail("verify needs --public-key <pem file>, or --identity and --issuer (keyless)");
  let gates = { ...DEFAULT_GATES };
  if (values.gates !== undefined) {
    try {
      gates = validateGates(JSON.parse(values.gates), "--gates");
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
  }
  return {
    imageName: m[1],
    digest: m[2],
    expectedRevision:
      values.commit ?? fail("verify needs --commit <the 40-hex commit being released>"),
    gates,
    trust,
    tlog: values.tlog ?? false,
    registryUsername: values.username,
    registryToken: token,
  };
}

/** `--secrets-stdin`: the providers hand the token and the signing key over on stdin as JSON
 *  (never the environment, which `ps e` and /proc show); they land in this process's own
 *  environment only, which no tool inherits (tools get allow-listed environments). */
async function takeSecretsFromStdin(): Promise<void> {
  const at = process.argv.indexOf("--secrets-stdin");
  if (at < 0) return;
  process.argv.splice(at, 1);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const secrets = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<
    string,
    string
  >;
  for (const [k, v] of Object.entries(secrets))
    if (k === TOKEN_ENV || k === SIGNING_KEY_ENV) process.env[k] = v;
}

async function main(): Promise<void> {
  await takeSecretsFromStdin();
  if (process.argv[2] === "publish") {
    const { values } = parseArgs({
      args: process.argv.slice(3),
      options: { request: { type: "string" } },
      strict: true,
    });
    const req = JSON.parse(
      fs.readFileSync(values.request ?? fail("publish needs --request <file>"), "utf8"),
    ) as PublishRequest;
    const signingKey = process.env[SIGNING_KEY_ENV];
    const result = await publish({
      ...req,
      registryToken: process.env[TOKEN_ENV],
      signingKey: signingKey === "" ? undefined : signingKey,
    });
    if (result.signing !== undefined) {
      process.stderr.write(
        `publish: signing took ${result.signing.seconds.toFixed(1)} s (made ${result.signing.created.length}, already verified ${result.signing.reused.length})\n`,
      );
    }
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  if (process.argv[2] === "verify") {
    const req = verifyRequestFromArgs(process.argv.slice(3));
    try {
      const report = await verifyRelease(req);
      process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    } catch (e) {
      if (e instanceof VerificationError) {
        process.stderr.write(`${e.message}\n`);
        process.exit(1);
      }
      throw e;
    }
    return;
  }
  let req: EvidenceRequest;
  try {
    req = await requestFromArgs(process.argv.slice(2));
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  const result = await runEvidence(req);
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  if (!result.gateResults.passed) {
    process.stderr.write(formatGateFailures(result.gateResults) + "\n");
    process.exit(1);
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`evidence: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}
