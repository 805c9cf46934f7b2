// Plain shapes shared by the config validation (components/config.ts, whose ValidatedConfig
// gathers them) and the components that take them as arguments.

/** Platforms the factory knows how to build. docker-build's Platform enum lacks `linux/arm/v7`;
 *  buildx parses the variant itself, so the string is passed through unchanged. */
export const KNOWN_PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"] as const;
export type Platform = (typeof KNOWN_PLATFORMS)[number];

/** The BuildKit host architecture that serves each platform natively (Graviton runs arm/v7 too). */
export type HostArch = "amd64" | "arm64";
export const HOST_ARCH: Record<Platform, HostArch> = {
  "linux/amd64": "amd64",
  "linux/arm64": "arm64",
  "linux/arm/v7": "arm64",
};

export interface GitContext {
  /** Full ref, e.g. `refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/12/merge`. */
  ref: string;
  /** 40-hex commit sha. */
  sha: string;
  /** Where the values came from, for error messages and logs. */
  source: "config" | "env" | "git";
}

export type CacheType = "registry" | "s3" | "gha" | "local";
export interface CacheConfig {
  type: CacheType;
  /** `max` exports every intermediate layer; `min` only the final image's. @default "max" */
  mode: "max" | "min";
  /** registry: repository for cache manifests. @default `${imageName}-cache` */
  ref?: string;
  /** s3: bucket name; created by the factory when unset. */
  bucket?: string;
  /** s3: region. @default the aws provider's region */
  region?: string;
  /** s3 (and registry lifecycle docs): days before cache objects expire. @default 14 */
  expireDays?: number;
  /** local: directory on the builder. @default `.local/cache` */
  dir?: string;
  /** registry: the cache as an OCI image manifest with OCI media types (GHCR, ECR and distribution
   *  v3 take it); false writes BuildKit's older index form, which ECR and distribution v3 refuse.
   *  @default true */
  ociMediaTypes?: boolean;
  /** Keep building when a cache export fails (a cold cache must not fail a release). @default true */
  ignoreError?: boolean;
}

export interface BuildHostsConfig {
  /** Provision native BuildKit hosts on AWS. @default true on dev/prod, false on local */
  enabled: boolean;
  /** @default "c7i.xlarge" */
  amd64InstanceType: string;
  /** @default "c7g.xlarge" */
  arm64InstanceType: string;
  /** CIDRs allowed to reach the BuildKit port. Empty = no ingress. A /0 is always refused; IPv4
   *  ranges wider than /16, IPv6 wider than /48, or lists covering more than that together are
   *  refused unless allowWideCidrs gives the reason. @default [] */
  allowedCidrs: string[];
  /** Why allowedCidrs needs wider ranges (a non-empty reason, kept in the stack config). */
  allowWideCidrs?: string;
  /** BuildKit mTLS port. @default 1234 */
  port: number;
  /** Size of the encrypted gp3 cache volume per host. @default 200 */
  cacheVolumeGb: number;
  /** Subnet to place the hosts in. @default the default VPC's first subnet */
  subnetId?: string;
  /** When set, every platform is routed to this existing buildx builder (the local stack). */
  localBuilder?: string;
  /** How the hosts reach Systems Manager (docs/build-hosts.md). @default "scoped" */
  ssmAccess: SsmAccess;
}

/** `scoped`: Session Manager with a policy limited to the host; `managed-core`: AWS's
 *  AmazonSSMManagedInstanceCore (ssm:GetParameter* on every parameter); `none`: no SSM agent access. */
export type SsmAccess = "scoped" | "managed-core" | "none";

export interface GithubConfig {
  owner: string;
  repository: string;
  /** GitHub user or team slugs required to approve the `production` environment. @default [] */
  productionReviewers: string[];
  /** @default "private" */
  packageVisibility: "public" | "private" | "internal";
  /** Untagged package versions older than this are deleted by the retention workflow. @default 30 */
  untaggedRetentionDays: number;
}

export type { GatesConfig } from "../evidence/gates";
