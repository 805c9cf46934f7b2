// SupplyChainEvidence: orders the evidence engine (evidence/) on the pushed platform digests and
// maps its JSON to outputs, through the dynamic resources in ./evidenceResource.ts: one Scans step
// per platform (Syft, Trivy, Dive), started as soon as that platform's image is pushed, and one
// for the build context (Hadolint, Trivy), started at once; then Evidence (the coverage, and the
// gates on exactly the digests scanned) once the coverage image and every scan are there.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { type BoundGateResults, type GatesConfig, diveLimits } from "../evidence/gates";
import type { PlatformEvidence, SbomStore } from "../evidence/run";
import { ENGINE_ENTRY } from "./engineProcess";
import { platformSlug } from "./naming";
import {
  EvidenceResource,
  type ProviderInputs,
  type ScanProviderInputs,
  ScansResource,
} from "./evidenceResource";

export {
  EvidenceResource,
  ScansResource,
  evidenceFingerprint,
  evidenceProvider,
  scansFingerprint,
  scansProvider,
} from "./evidenceResource";

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
  /** Platform → pushed manifest digest (each platform Image's `digest`): each is scanned as soon
   *  as it is known. */
  platformDigests: Record<string, pulumi.Input<string>>;
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
    const registryToken =
      args.registryToken !== undefined ? pulumi.secret(args.registryToken) : undefined;
    const platformDigests = pulumi.all(args.platformDigests);
    const shared = {
      imageName: args.imageName,
      platformDigests,
      // Relative to the program directory (the cwd of program and provider): a clone elsewhere is no change.
      dockerfile: rel(dockerfile),
      contextDir: rel(contextDir),
      outputDir: rel(path.resolve(args.outputDir)),
      sbomStore: args.sbomStore ?? (loopback ? "file" : "oci"),
      vulnDb: { repository: args.vulnerabilityDb },
      registryUsername: args.registryUsername,
      registryToken,
      engine: ENGINE_ENTRY,
      contentHash: contentHashOf([dockerfile, ...listFiles(contextDir)]),
    };
    const gates = diveLimits(args.gates);
    // The build context needs no image and no registry: it is scanned while the images build.
    const contextInputs: Record<keyof ScanProviderInputs, unknown> = {
      ...shared,
      platformDigests: {},
      registryUsername: undefined,
      registryToken: undefined,
      gates,
      contextChecks: true,
    };
    const scans = [new ScansResource(`${name}-scans-context`, contextInputs, { parent: this })];
    for (const [platform, digest] of Object.entries(args.platformDigests).sort()) {
      const platformInputs: Record<keyof ScanProviderInputs, unknown> = {
        ...shared,
        platformDigests: pulumi.output(digest).apply((d) => ({ [platform]: d })),
        gates,
        contextChecks: false,
        // An image is its digest: an edit of the context that builds the same bytes rescans nothing.
        contentHash: "",
      };
      scans.push(
        new ScansResource(`${name}-scans-${platformSlug(platform)}`, platformInputs, {
          parent: this,
          additionalSecretOutputs: ["registryToken"],
        }),
      );
    }
    const inputs: Record<keyof ProviderInputs, unknown> = {
      ...shared,
      sourceRevision: args.sourceRevision,
      coverageImage: args.coverageImage,
      coverageSummaryPath: undefined,
      gates: args.gates,
      scanned: pulumi.all(scans.map((x) => x.scanned)),
    };
    const res = new EvidenceResource(`${name}-evidence`, inputs, {
      parent: this,
      // Explicit as well: the judging must follow the scans even when their output is not known.
      dependsOn: scans,
      additionalSecretOutputs: ["registryToken"],
    });
    this.sbomLocations = res.sbomLocations;
    this.gateResults = res.gateResults;
    this.platforms = res.platforms;
    this.registerOutputs({ sbomLocations: this.sbomLocations, gateResults: this.gateResults });
  }
}
