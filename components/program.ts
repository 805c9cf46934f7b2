// The whole factory as one plain function of validated config: index.ts only reads config and
// exports what this returns, so tests drive exactly the program `pulumi up` runs. Two pieces with
// their own args: the stack's shared infrastructure (build hosts, registry login, cache policy,
// signing key) and one image's pipeline on it (build, evidence, publish, or promotion). Another
// image on the same hosts is one more imagePipeline call.
import * as pulumi from "@pulumi/pulumi";
import type { ValidatedConfig } from "./config";
import { imagePipeline, type ImagePipelineOutputs } from "./imagePipeline";
import {
  cacheScope,
  createSharedInfrastructure,
  type SharedInfrastructureArgs,
} from "./sharedInfrastructure";

export interface FactoryArgs extends ValidatedConfig {
  stack: string;
  /** Secret registry token; required when pushing (validated before this is called). */
  registryToken?: pulumi.Output<string>;
}

/** The stack-export contract (design.md), plus gate results for promotion to check. */
export interface FactoryOutputs extends ImagePipelineOutputs {
  buildHosts?: pulumi.Output<Record<string, string>>;
  /** `docker buildx create --driver remote …` per architecture, for CI (no secret material). */
  builderCommands?: pulumi.Output<Record<string, string>>;
  /** What CI writes to the builderCommands' cert paths, one secret object: tools treat an output
   *  as secret only when the whole top-level value is. */
  builderTls?: pulumi.Output<{ caCertPem: string; clientCertPem: string; clientKeyPem: string }>;
  cacheRefs: pulumi.Output<Record<string, string>>;
}

/** The stack's shared infrastructure as this stack's config asks for it. */
export function sharedInfrastructureArgs(cfg: FactoryArgs): SharedInfrastructureArgs {
  return {
    stack: cfg.stack,
    role: cfg.promoteFrom !== undefined ? "promote" : cfg.publish ? "publish" : "review",
    platforms: cfg.platforms,
    cache: cfg.cache,
    cacheScope: cacheScope(cfg.git.ref, cfg.publish),
    buildHosts: cfg.buildHosts,
    signing: cfg.signing,
    push: cfg.push,
    registry: { address: cfg.registry, username: cfg.registryUsername, token: cfg.registryToken },
  };
}

export function createFactory(
  cfg: FactoryArgs,
  opts?: { parent?: pulumi.Resource },
): FactoryOutputs {
  const shared = createSharedInfrastructure(sharedInfrastructureArgs(cfg), opts);
  const image = imagePipeline("", cfg, shared, opts);
  const hosts = shared.hosts;
  return {
    imageName: image.imageName,
    digest: image.digest,
    imageRef: image.imageRef,
    platformDigests: image.platformDigests,
    tags: image.tags,
    sbomLocations: image.sbomLocations,
    gateResults: image.gateResults,
    buildHosts: hosts?.endpoints,
    builderCommands: hosts?.builderCommands,
    builderTls:
      hosts !== undefined
        ? pulumi.secret(
            pulumi
              .all([hosts.caCertPem, hosts.clientCertPem, hosts.clientKeyPem])
              .apply(([caCertPem, clientCertPem, clientKeyPem]) => ({
                caCertPem,
                clientCertPem,
                clientKeyPem,
              })),
          )
        : undefined,
    cacheRefs: shared.cache?.cacheRefs ?? pulumi.output<Record<string, string>>({}),
    release: image.release,
    signing: image.signing,
  };
}
