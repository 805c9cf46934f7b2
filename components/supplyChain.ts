// SupplyChainEvidence: orders the evidence engine (evidence/) on the pushed platform digests and
// maps its JSON to outputs. Mechanism: a thin Pulumi dynamic provider that runs the engine's own
// command-line entry (evidence/cli.ts) as a child process. Why not a command resource: the
// engine's verdict must fail the resource with the gate message (so the publish step that depends
// on it never runs), its JSON must become typed outputs, and the registry token must reach the
// child only through its environment, never a command line or a file. Why a child process at all:
// the serialized provider stays a few lines of Node built-ins (no engine code in the state), and
// CI or a person runs exactly the same entry with `npm run evidence`.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { BoundGateResults, GatesConfig } from "../evidence/gates";
import type { EvidenceRequest, EvidenceResult, PlatformEvidence, SbomStore } from "../evidence/run";
import { ENGINE_ENTRY, engineStepProvider, engineTail, runEngineProcess } from "./engineProcess";

/** Inputs as the provider receives them: an EvidenceRequest (token decrypted only in the provider
 *  process, never returned) plus what decides a rerun. */
type ProviderInputs = Omit<EvidenceRequest, "registryToken" | "concurrency"> & {
  registryToken?: string;
  engine: string;
  contentHash: string;
};

/** Everything but the token and the engine's path decides whether the evidence is rerun. */
export function evidenceFingerprint(inputs: ProviderInputs): string {
  const rest: Record<string, unknown> = { ...inputs };
  delete rest.registryToken;
  delete rest.engine;
  const stable = (v: unknown): string =>
    Array.isArray(v)
      ? `[${v.map(stable).join(",")}]`
      : v !== null && typeof v === "object"
        ? `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
            .join(",")}}`
        : (JSON.stringify(v) ?? "null");
  return crypto.createHash("sha256").update(stable(rest)).digest("hex");
}

async function runEngine(inputs: ProviderInputs): Promise<pulumi.dynamic.CreateResult> {
  const request: Record<string, unknown> = { ...inputs };
  for (const k of ["registryToken", "engine", "contentHash"]) delete request[k];
  const child = await runEngineProcess([], request, inputs.registryToken);
  if (child.code === 1)
    throw new Error(`SupplyChainEvidence for ${inputs.imageName}: ${child.stderr.trim()}`);
  if (child.code !== 0) {
    throw new Error(
      `SupplyChainEvidence for ${inputs.imageName}: the evidence run failed before judging (exit ${child.code}): ${engineTail(child)}\n` +
        `Nothing was published. Check that the registry ${inputs.imageName.split("/")[0]} is reachable with the configured credentials and the scanners are installed (scripts/install-scanners.sh), then run \`pulumi up\` again.`,
    );
  }
  const result = JSON.parse(child.stdout) as EvidenceResult;
  const id = crypto
    .createHash("sha256")
    .update(JSON.stringify(inputs.platformDigests))
    .digest("hex")
    .slice(0, 16);
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

/** Hash of what the build-context scans read, so a Dockerfile or source edit reruns the evidence
 *  even when the image digests happen not to change. */
export function contentHashOf(files: string[]): string {
  const h = crypto.createHash("sha256");
  for (const f of files)
    h.update(f).update(fs.existsSync(f) ? fs.readFileSync(f) : Buffer.from("<missing>"));
  return h.digest("hex");
}

function listFiles(
  dir: string,
  skip = new Set(["node_modules", "dist", "coverage", ".git"]),
): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !skip.has(e.name))
    .flatMap((e) =>
      e.isDirectory()
        ? listFiles(path.join(dir, e.name), skip)
        : e.isFile()
          ? [path.join(dir, e.name)]
          : [],
    )
    .sort();
}

export interface SupplyChainEvidenceArgs {
  /** Repository without tag, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  /** Platform → pushed manifest digest (MultiPlatformImage.platformDigests). */
  platformDigests: pulumi.Input<Record<string, string>>;
  /** Commit the images were built from. */
  sourceRevision: string;
  /** `ref@digest` of the Dockerfile's coverage stage (MultiPlatformImage.coverageRef). */
  coverageImage: pulumi.Input<string>;
  registryUsername?: string;
  /** Always treated as a secret. */
  registryToken?: pulumi.Input<string>;
  /** Build context (Trivy config/secret scans); its Dockerfile is linted. */
  contextDir: string;
  gates: GatesConfig;
  /** Folder for SBOMs, reports and gate-results.json, e.g. `.local/evidence/<stack>`. */
  outputDir: string;
  /** @default "oci" off loopback, "file" on a loopback registry */
  sbomStore?: SbomStore;
  /** Trivy vulnerability DB artifact. @default Trivy's public DB */
  vulnerabilityDb?: string;
}

export class SupplyChainEvidence extends pulumi.ComponentResource {
  /** Platform → URI of its SPDX SBOM (`file://…` or `oci://registry/repo@sha256:…`). */
  public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  /** Gate results bound to the platform digests and source revision they judged. */
  public readonly gateResults: pulumi.Output<BoundGateResults>;
  public readonly platforms: pulumi.Output<Record<string, PlatformEvidence>>;

  constructor(name: string, args: SupplyChainEvidenceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:supplychain:SupplyChainEvidence", name, {}, opts);
    const contextDir = path.resolve(args.contextDir);
    const dockerfile = path.join(contextDir, "Dockerfile");
    if (!fs.existsSync(dockerfile))
      throw new pulumi.InputPropertyError({
        propertyPath: "contextDir",
        reason: `${dockerfile} does not exist`,
      });
    const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(
      args.imageName.split("/")[0],
    );
    const rel = (p: string): string => path.relative(process.cwd(), p) || ".";
    const inputs: Record<keyof ProviderInputs, unknown> = {
      imageName: args.imageName,
      platformDigests: args.platformDigests,
      sourceRevision: args.sourceRevision,
      coverageImage: args.coverageImage,
      coverageSummaryPath: undefined,
      // Relative to the program directory (the cwd of program and provider): a clone elsewhere is no change.
      dockerfile: rel(dockerfile),
      contextDir: rel(contextDir),
      gates: args.gates,
      outputDir: rel(path.resolve(args.outputDir)),
      sbomStore: args.sbomStore ?? (loopback ? "file" : "oci"),
      vulnDb: { repository: args.vulnerabilityDb },
      registryUsername: args.registryUsername,
      registryToken:
        args.registryToken !== undefined ? pulumi.secret(args.registryToken) : undefined,
      engine: ENGINE_ENTRY,
      contentHash: contentHashOf([dockerfile, ...listFiles(contextDir)]),
    };
    const res = new EvidenceResource(`${name}-evidence`, inputs, {
      parent: this,
      additionalSecretOutputs: ["registryToken"],
    });
    this.sbomLocations = res.sbomLocations;
    this.gateResults = res.gateResults;
    this.platforms = res.platforms;
    this.registerOutputs({ sbomLocations: this.sbomLocations, gateResults: this.gateResults });
  }
}

/** The dynamic resource (`pulumi-nodejs:dynamic/supplychain:Evidence`) that runs the engine. */
export class EvidenceResource extends pulumi.dynamic.Resource {
  declare public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  declare public readonly gateResults: pulumi.Output<BoundGateResults>;
  declare public readonly platforms: pulumi.Output<Record<string, PlatformEvidence>>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(
      evidenceProvider,
      name,
      {
        ...props,
        sbomLocations: undefined,
        gateResults: undefined,
        platforms: undefined,
        fingerprint: undefined,
      },
      opts,
      "supplychain",
      "Evidence",
    );
  }
}
