// `npm run evidence -- --image <repo@digest> [...]`: the evidence engine without Pulumi. Prints the
// run's JSON (gate results bound to the digests judged, SBOM locations, per-platform figures) on
// stdout; exits 0 when every gate passed, 1 when a gate failed, 2 when the run itself could not
// happen (bad arguments, registry unreachable). The stack's SupplyChainEvidence runs this same
// entry with `--request`, so what CI or a person runs is what `pulumi up` runs.
//
// The registry password is read from IMAGE_FACTORY_REGISTRY_TOKEN only: never a flag (it would be
// visible in the process list) and never a file.
import * as fs from "node:fs";
import * as path from "node:path";
import { errMessage } from "./exec";
import { gatesArg, imageArg, parseFlags, requestOrFlags, required } from "./cliArgs";
import { formatGateFailures } from "./gates";
import { indexPlatforms, probeInsecure, registryOf } from "./oci";
import { type PublishRequest, publish } from "./publish";
import { type EvidenceRequest, type ScanRequest, runEvidence, scanEvidence } from "./run";
import { type VerifyRequest, VerificationError, verifyRelease } from "./verify";

export const TOKEN_ENV = "IMAGE_FACTORY_REGISTRY_TOKEN";
/** key mode's private key for `publish`: only ever from the environment (never a flag or a file). */
export const SIGNING_KEY_ENV = "IMAGE_FACTORY_SIGNING_KEY";

const USAGE = `usage: npm run evidence -- --image <repo@sha256:…> [options]
       npm run evidence -- --request <request.json>
       npm run evidence -- scan --request <scan.json>         (every scanner, no judging: what the stack's Scans step runs)
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

const EVIDENCE_FLAGS = [
  "request",
  "image",
  "platform",
  "source-revision",
  "dockerfile",
  "context",
  "coverage-image",
  "coverage-summary",
  "gates",
  "db-repository",
  "out",
  "sbom-store",
  "username",
] as const;

/** The evidence run's arguments → an EvidenceRequest (the token from the environment only). */
export async function requestFromArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<EvidenceRequest> {
  const f = parseFlags(argv, EVIDENCE_FLAGS);
  const token = env[TOKEN_ENV];
  return requestOrFlags<EvidenceRequest>(f.request, token, async () => {
    const { image, imageName, digest } = imageArg(f.image, "--image or --request is required");
    const sbomStore = f["sbom-store"] ?? "file";
    if (sbomStore !== "file" && sbomStore !== "oci")
      throw new Error(`--sbom-store must be file or oci, got ${JSON.stringify(sbomStore)}`);
    const registry = registryOf(imageName);
    const auth = { registry, username: f.username, password: token };
    const platformDigests =
      f.platform !== undefined
        ? { [f.platform]: digest }
        : await indexPlatforms({ ...auth, insecure: await probeInsecure(registry) }, image);
    const dockerfile = f.dockerfile ?? "app/Dockerfile";
    return {
      imageName,
      platformDigests,
      sourceRevision: f["source-revision"] ?? "unknown",
      dockerfile,
      contextDir: f.context ?? path.dirname(dockerfile),
      coverageImage: f["coverage-image"],
      coverageSummaryPath: f["coverage-summary"],
      gates: gatesArg(f.gates),
      outputDir: f.out ?? ".local/evidence/cli",
      sbomStore,
      vulnDb: { repository: f["db-repository"] },
      registryUsername: f.username,
    };
  });
}

const VERIFY_FLAGS = [
  "request",
  "image",
  "commit",
  "public-key",
  "identity",
  "issuer",
  "gates",
  "username",
] as const;

/** `verify` arguments → a VerifyRequest (the token from the environment only). */
export function verifyRequestFromArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<VerifyRequest> {
  const f = parseFlags(argv, VERIFY_FLAGS, ["tlog"]);
  return requestOrFlags<VerifyRequest>(f.request, env[TOKEN_ENV], () => {
    const { imageName, digest } = imageArg(
      f.image,
      "verify needs --image <repo@sha256:…> (or --request <file>)",
    );
    const { identity, issuer } = f;
    const publicKey = f["public-key"];
    let trust: VerifyRequest["trust"];
    if (publicKey !== undefined) trust = { publicKeyPem: fs.readFileSync(publicKey, "utf8") };
    else if (identity !== undefined && issuer !== undefined) trust = { identity, issuer };
    else
      throw new Error("verify needs --public-key <pem file>, or --identity and --issuer (keyless)");
    return {
      imageName,
      digest,
      expectedRevision: required(
        f.commit,
        "verify needs --commit <the 40-hex commit being released>",
      ),
      gates: gatesArg(f.gates),
      trust,
      tlog: f.tlog ?? false,
      registryUsername: f.username,
    };
  });
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

/** Arguments that cannot be read are a usage error: exit 2, with the usage. */
async function parsed<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    fail(errMessage(e));
  }
}

/** A command that takes only `--request <file>` (what the stack's steps run); the token from the
 *  environment only. */
function requestOnly<R>(argv: string[], command: string): Promise<R & { registryToken?: string }> {
  return parsed(() =>
    requestOrFlags<R>(parseFlags(argv, ["request"]).request, process.env[TOKEN_ENV], () => {
      throw new Error(`${command} needs --request <file>`);
    }),
  );
}

async function publishCommand(argv: string[]): Promise<void> {
  const req = await requestOnly<PublishRequest>(argv, "publish");
  const signingKey = process.env[SIGNING_KEY_ENV];
  const result = await publish({ ...req, signingKey: signingKey === "" ? undefined : signingKey });
  if (result.signing !== undefined) {
    process.stderr.write(
      `publish: signing took ${result.signing.seconds.toFixed(1)} s (made ${result.signing.created.length}, already verified ${result.signing.reused.length})\n`,
    );
  }
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

async function verifyCommand(argv: string[]): Promise<void> {
  const req = await parsed(() => verifyRequestFromArgs(argv));
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
}

async function scanCommand(argv: string[]): Promise<void> {
  const req = await requestOnly<ScanRequest>(argv, "scan");
  process.stdout.write(JSON.stringify(await scanEvidence(req), null, 2) + "\n");
}

async function evidenceCommand(argv: string[]): Promise<void> {
  const req = await parsed(() => requestFromArgs(argv));
  const result = await runEvidence(req);
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  if (!result.gateResults.passed) {
    process.stderr.write(formatGateFailures(result.gateResults) + "\n");
    process.exit(1);
  }
}

async function main(): Promise<void> {
  await takeSecretsFromStdin();
  const [command, ...rest] = process.argv.slice(2);
  if (command === "--help" || command === "-h") process.stdout.write(`${USAGE}\n`);
  else if (command === "scan") await scanCommand(rest);
  else if (command === "publish") await publishCommand(rest);
  else if (command === "verify") await verifyCommand(rest);
  else await evidenceCommand(process.argv.slice(2));
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`evidence: ${errMessage(e)}\n`);
    process.exit(2);
  });
}
