// What every image pipeline of a stack uses and none owns: the build cache's policy (and its
// bucket), the native build hosts, the registry login and the signing key. A second image on the
// same hosts is a second `imagePipeline` call with this, never a second set of hosts or keys.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { BuildCache } from "./buildCache";
import { BuildHosts } from "./buildHosts";
import { builderName } from "./naming";
import { SigningKey } from "./signing";
import type { SigningConfig } from "./signingConfig";
import {
  HOST_ARCH,
  type BuildHostsConfig,
  type CacheConfig,
  type HostArch,
  type Platform,
} from "./types";

/** The registry login the pipelines share; each one checks its own repository's push scope. */
export interface RegistryAccess {
  /** Registry host, e.g. `ghcr.io`. */
  address: string;
  username?: string;
  /** Secret; unset where nothing is pushed. */
  token?: pulumi.Output<string>;
}

export interface SharedInfrastructureArgs {
  stack: string;
  /** `promote` builds nothing (no cache, hosts or key); `review` provisions no hosts and signs
   *  nothing: it runs under the target stack's name and uses that stack's builders. */
  role: "publish" | "review" | "promote";
  /** Every platform any image of the stack builds: the hosts' architectures, the cache's refs. */
  platforms: Platform[];
  cache: CacheConfig;
  /** A pull request's or a review's cache scope (cacheScope()); unset = the default branch's. */
  cacheScope?: string;
  buildHosts: BuildHostsConfig;
  /** Who signs (building stacks) or whom promotion trusts (promoting stacks). */
  signing: SigningConfig;
  /** false: nothing is pushed, so there is nothing to sign and no key. */
  push: boolean;
  registry: RegistryAccess;
}

export interface SharedInfrastructure {
  stack: string;
  registry: RegistryAccess;
  signing: SigningConfig;
  /** Unset on a promoting stack. */
  cache?: BuildCache;
  hosts?: BuildHosts;
  /** Which buildx builder serves each host architecture. */
  builders: Partial<Record<HostArch, string>>;
  signingKey?: SigningKey;
}

/** A pull request never writes the cache main's builds import (docs/delivery.md: cache poisoning);
 *  nor does a review build (publish: false), whatever ref it names. */
export function cacheScope(ref: string, publish: boolean): string | undefined {
  const pr = /^refs\/pull\/(\d+)\//.exec(ref)?.[1];
  return pr !== undefined ? `pr-${pr}` : publish ? undefined : "review";
}

/** Which buildx builder serves each host architecture on this stack. */
export function buildersFor(
  buildHosts: BuildHostsConfig,
  stack: string,
): Partial<Record<HostArch, string>> {
  if (buildHosts.localBuilder !== undefined) {
    return { amd64: buildHosts.localBuilder, arm64: buildHosts.localBuilder };
  }
  if (buildHosts.enabled)
    return { amd64: builderName(stack, "amd64"), arm64: builderName(stack, "arm64") };
  return {};
}

/** The role `pulumi up` runs as (an assumed role's session ARN → the role's ARN): who may sign with
 *  a kms key when `signing.signerRoleArns` is not set. */
function callerRoleArn(parent?: pulumi.Resource): pulumi.Output<string> {
  return aws.getCallerIdentityOutput({}, { parent }).arn.apply((arn) => {
    const m =
      /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(arn) ??
      /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    if (m === null) {
      throw new Error(
        `image-factory:signing.signerRoleArns is not set and \`pulumi up\` does not run as a role (${arn}): name the roles that may sign with the kms key`,
      );
    }
    return `arn:${m[1]}:iam::${m[2]}:role/${m[3]}`;
  });
}

/** Plain function: the resources keep the names (`cache`, `buildhosts`, `signing`) existing stacks
 *  hold, so moving them here replaced nothing. */
export function createSharedInfrastructure(
  args: SharedInfrastructureArgs,
  opts?: { parent?: pulumi.Resource },
): SharedInfrastructure {
  const parent = opts?.parent;
  const shared: SharedInfrastructure = {
    stack: args.stack,
    registry: args.registry,
    signing: args.signing,
    builders: buildersFor(args.buildHosts, args.stack),
  };
  if (args.role === "promote") return shared;

  const cache = new BuildCache(
    "cache",
    { cache: args.cache, platforms: args.platforms, stack: args.stack, scope: args.cacheScope },
    { parent },
  );
  // Native hosts, only for the architectures the configured platforms need.
  const hosts =
    args.buildHosts.enabled && args.buildHosts.localBuilder === undefined && args.role === "publish"
      ? new BuildHosts(
          "buildhosts",
          {
            config: args.buildHosts,
            stack: args.stack,
            architectures: [...new Set(args.platforms.map((p) => HOST_ARCH[p]))],
            cacheBucketArn: cache.bucket?.arn,
          },
          { parent },
        )
      : undefined;
  // Created in parallel with the builds, used by the publish step (docs/signing.md).
  const sg = args.signing;
  const signingKey =
    args.role === "publish" && args.push
      ? new SigningKey(
          "signing",
          {
            mode: sg.mode,
            signerRoleArns:
              sg.mode === "kms" ? (sg.signerRoleArns ?? [callerRoleArn(parent)]) : undefined,
            readerRoleArns: sg.readerRoleArns,
            identity:
              sg.mode === "keyless"
                ? { workflowRef: sg.identity ?? "", issuer: sg.issuer ?? "" }
                : undefined,
          },
          { parent },
        )
      : undefined;
  return { ...shared, cache, hosts, signingKey };
}
