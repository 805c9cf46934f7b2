// The evidence run as a resource: a thin Pulumi dynamic provider that runs the engine's own
// command-line entry (evidence/cli.ts) as a child process. Why not a command resource: the
// engine's verdict must fail the resource with the gate message (so the publish step that depends
// on it never runs), its JSON must become typed outputs, and the registry token must reach the
// child only through its environment, never a command line or a file. Why a child process at all:
// the serialized provider stays a few lines of Node built-ins (no engine code in the state), and
// CI or a person runs exactly the same entry with `npm run evidence`.
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { BoundGateResults } from "../evidence/gates";
import type {
  EvidenceRequest,
  EvidenceResult,
  PlatformEvidence,
  ScanRequest,
  ScannedEvidence,
} from "../evidence/run";
import {
  engineStepProvider,
  engineTail,
  inputsFingerprint,
  runEngineProcess,
} from "./engineProcess";
import { EngineStepResource } from "./engineStepResource";

/** Inputs as the provider receives them: an EvidenceRequest (token decrypted only in the provider
 *  process, never returned) plus what decides a rerun. */
export type ProviderInputs = Omit<EvidenceRequest, "registryToken" | "concurrency"> & {
  registryToken?: string;
  engine: string;
  contentHash: string;
};

/** The Scans step's inputs: a ScanRequest (token decrypted only in the provider process) plus
 *  what decides a rescan. */
export type ScanProviderInputs = Omit<ScanRequest, "registryToken" | "concurrency"> & {
  registryToken?: string;
  engine: string;
  contentHash: string;
};

/** Everything but the token and the engine's path decides whether the scans are run again. */
export function scansFingerprint(inputs: ScanProviderInputs): string {
  return inputsFingerprint(inputs, ["registryToken", "engine"]);
}

/** One step of the engine (`args`: `["scan"]` scans, `[]` judges) on `inputs`: its JSON result and
 *  the resource id (from the digests). Exit 1 is a verdict (a gate failed); any other failure
 *  happened before judging, and the message says what to check. */
async function runEvidenceStep<T>(
  args: string[],
  what: string,
  inputs: { imageName: string; platformDigests: unknown; registryToken?: string },
): Promise<{ id: string; result: T }> {
  const request: Record<string, unknown> = { ...inputs };
  for (const k of ["registryToken", "engine", "contentHash"]) delete request[k];
  const child = await runEngineProcess(args, request, inputs.registryToken);
  if (child.code === 1)
    throw new Error(`SupplyChainEvidence for ${inputs.imageName}: ${child.stderr.trim()}`);
  if (child.code !== 0) {
    throw new Error(
      `SupplyChainEvidence for ${inputs.imageName}: ${what} failed before judging (exit ${child.code}): ${engineTail(child)}\n` +
        `Nothing was published. Check that the registry ${inputs.imageName.split("/")[0]} is reachable with the configured credentials and the scanners are installed (scripts/install-scanners.sh), then run \`pulumi up\` again.`,
    );
  }
  const id = crypto
    .createHash("sha256")
    .update(JSON.stringify(inputs.platformDigests))
    .digest("hex")
    .slice(0, 16);
  return { id, result: JSON.parse(child.stdout) as T };
}

async function runScans(inputs: ScanProviderInputs): Promise<pulumi.dynamic.CreateResult> {
  const { id, result } = await runEvidenceStep<ScannedEvidence>(
    ["scan"],
    "the evidence scans",
    inputs,
  );
  return { id, outs: { fingerprint: scansFingerprint(inputs), scanned: result } };
}

/** Serialized into the state: holds no secret and no Pulumi object. */
export const scansProvider = engineStepProvider(runScans, scansFingerprint);

/** The dynamic resource (`pulumi-nodejs:dynamic/supplychain:Scans`) that measures one platform
 *  image, or the build context: it needs no coverage, so it runs while the tests still build. */
export class ScansResource extends EngineStepResource {
  declare public readonly scanned: pulumi.Output<ScannedEvidence>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(scansProvider, ["supplychain", "Scans"], ["scanned", "fingerprint"], name, props, opts);
  }
}

/** Everything but the token and the engine's path decides whether the evidence is rerun. */
export function evidenceFingerprint(inputs: ProviderInputs): string {
  return inputsFingerprint(inputs, ["registryToken", "engine"]);
}

async function runEngine(inputs: ProviderInputs): Promise<pulumi.dynamic.CreateResult> {
  const { id, result } = await runEvidenceStep<EvidenceResult>([], "the evidence run", inputs);
  return {
    id,
    outs: {
      fingerprint: evidenceFingerprint(inputs),
      gateResults: result.gateResults,
      sbomLocations: result.sbomLocations,
      platforms: result.platforms,
      evidenceDir: result.evidenceDir,
      notes: result.notes,
    },
  };
}

/** Serialized into the state: holds no secret and no Pulumi object. Evidence stays where it was
 *  published: deleting a stack does not delete audit records. */
export const evidenceProvider = engineStepProvider(runEngine, evidenceFingerprint);

/** The dynamic resource (`pulumi-nodejs:dynamic/supplychain:Evidence`) that runs the engine. */
export class EvidenceResource extends EngineStepResource {
  declare public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  declare public readonly gateResults: pulumi.Output<BoundGateResults>;
  declare public readonly platforms: pulumi.Output<Record<string, PlatformEvidence>>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    const outputs = ["sbomLocations", "gateResults", "platforms", "fingerprint"];
    super(evidenceProvider, ["supplychain", "Evidence"], outputs, name, props, opts);
  }
}
