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

export const TOKEN_ENV = "IMAGE_FACTORY_REGISTRY_TOKEN";

const USAGE = `usage: npm run evidence -- --image <repo@sha256:…> [options]
       npm run evidence -- --request <request.json>
       npm run evidence -- publish --request <publish.json>   (verify the binding, then move the tags)
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

export async function requestFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<EvidenceRequest> {
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
  if (m === null) fail(`--image must be <repository>@sha256:<64 hex>, got ${JSON.stringify(image)}`);
  const [, imageName, digest] = m;
  let platformDigests: Record<string, string>;
  if (values.platform !== undefined) {
    platformDigests = { [values.platform]: digest };
  } else {
    const registry = registryOf(imageName);
    platformDigests = await indexPlatforms({ registry, username: values.username, password: token, insecure: await probeInsecure(registry) }, image);
  }
  const sbomStore = values["sbom-store"] ?? "file";
  if (sbomStore !== "file" && sbomStore !== "oci") fail(`--sbom-store must be file or oci, got ${JSON.stringify(sbomStore)}`);
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

async function main(): Promise<void> {
  if (process.argv[2] === "publish") {
    const { values } = parseArgs({ args: process.argv.slice(3), options: { request: { type: "string" } }, strict: true });
    const req = JSON.parse(fs.readFileSync(values.request ?? fail("publish needs --request <file>"), "utf8")) as PublishRequest;
    const result = await publish({ ...req, registryToken: process.env[TOKEN_ENV] });
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
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
