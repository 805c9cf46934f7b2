// The pull-request review's data model: what a merge would ship, per platform, next to what ships
// now. Plain data only (JSON-serialisable), so the same value renders as Markdown
// (review/markdown.ts) and as JSON (renderJson). The evidence is gathered elsewhere; everything in
// review/ is pure.

/** A reason a piece of evidence is missing, e.g. `Trivy DB not reachable`. */
export interface Unavailable {
  unavailable: string;
}

/** One package in an SBOM: `type` is the purl type (`npm`, `deb`, `apk`, `golang`, …) or
 *  `unknown` when the package carries no purl; `version` is "" when the SBOM gives none. */
export interface PackageRef {
  name: string;
  type: string;
  version: string;
}

export interface PackageChange {
  name: string;
  type: string;
  before: string;
  after: string;
}

/** Packages added, removed and changed between two SBOMs, each sorted by type, name, version. */
export interface SbomDiff {
  added: PackageRef[];
  removed: PackageRef[];
  changed: PackageChange[];
}

export type Severity = "CRITICAL" | "HIGH" | "MEDIUM" | "LOW" | "UNKNOWN";

/** A vulnerability in a package; `installedVersion` joins several installed copies with ", ". */
export interface Vulnerability {
  id: string;
  pkgName: string;
  installedVersion: string;
  /** "" when no fixed version is known. */
  fixedVersion: string;
  severity: Severity;
}

/** New: in the candidate only. Fixed: in the current image only. Sorted by severity (critical
 *  first), id, package. */
export interface VulnDiff {
  new: Vulnerability[];
  fixed: Vulnerability[];
}

export type GateStatus = "passed" | "failed" | "not-run" | "waived";

export interface GateCheckSummary {
  /** e.g. `imageSize[linux/amd64]`, `coverage`. */
  name: string;
  status: GateStatus;
  measured?: number;
  limit?: number;
  /** Unit of measured and limit (`MB`, `%`, `findings`), when the results carry one. */
  unit?: string;
  /** Why a check was waived, or why it did not run. */
  reason?: string;
}

/** The gate results of one deploy, normalised from the stack's `gateResults` export
 *  (review/gates.ts parses both the `gate` and the `name` spelling of a check). */
export interface GateSummary {
  passed: boolean;
  checks: GateCheckSummary[];
  notRun: string[];
  /** Waived check → reason. */
  waived?: Record<string, string>;
}

/** Where a candidate build failed. `tail` is the last lines of the build output. */
export interface BuildError {
  stage: string;
  step: string;
  tail: string;
}

export interface CurrentImage {
  digest: string;
  sizeBytes: number;
  layers: number;
  /** This platform's checks (a `[platform]` suffix on the names is dropped when shown). Absent:
   *  the checks named `…[<platform>]` in Review.gates are used. */
  gates?: GateSummary;
}

export interface CandidateImage {
  digest?: string;
  sizeBytes?: number;
  layers?: number;
  /** As CurrentImage.gates. */
  gates?: GateSummary;
  buildError?: BuildError;
}

export interface PlatformReview {
  /** e.g. `linux/arm/v7`. */
  platform: string;
  /** What ships now; absent for a platform the merge adds (or a stack never deployed). */
  current?: CurrentImage;
  candidate: CandidateImage;
  /** Unavailable when an SBOM is missing (e.g. the candidate did not build). */
  packages: SbomDiff | Unavailable;
  vulnerabilities?: VulnDiff | Unavailable;
}

export interface TagMove {
  /** The tag, e.g. `main` or `sha-1a2b3c4`. */
  tag: string;
  /** Where the tag points now; absent for a tag the merge creates. */
  currentDigest?: string;
  /** Where the merge would point it; absent when not known before the deploy. */
  newDigest?: string;
}

export interface Review {
  stack: string;
  imageName: string;
  platforms: PlatformReview[];
  gates: { candidate: GateSummary; current?: GateSummary };
  tagsToMove: TagMove[];
  /** Compact `pulumi preview` text. */
  preview?: string;
  /** The pull request comes from a fork: evidence built without secrets, no Pulumi preview. */
  forks?: boolean;
}

export function isUnavailable(value: unknown): value is Unavailable {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Record<string, unknown>).unavailable === "string"
  );
}
