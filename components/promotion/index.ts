// Promotion by digest: a stack with `promoteFrom` publishes its own tags pointing at the exact
// manifest list another stack built and checked. Nothing is rebuilt, so prod runs the bytes dev
// tested. docker-build's `Index` takes a single `tag`, so there is one Index per tag, each with the
// source image's digest as its only source (`buildx imagetools create` copies a single index
// source unchanged, so every tag resolves to the same digest).
//
// Verify, do not trust (docs/signing.md): with `verification` set (the program always sets it),
// a dynamic resource runs the engine's `verify` step (evidence/verify.ts) on the registry before
// any Index exists, and every Index depends on it: the signature on the list's digest, the gates
// attestation (passed, bound to this list, its platform digests and this repository, nothing
// unrun, judged again with this stack's gates), an SBOM attestation on every platform digest and
// provenance naming the released commit. The source stack's outputs only say WHICH digest to
// check (checkSourceOutputs: digest, imageRef, release.sha); whether it may ship comes from the
// signed attestations.
import * as pulumi from "@pulumi/pulumi";
import * as dockerBuild from "@pulumi/docker-build";

import { type PromotedImageArgs, checkSourceOutputs, fail, validatePromotion } from "./rules";
import { type StackSigningExport, VerifiedRelease, trustFor } from "./verification";

export * from "./rules";
export * from "./verification";

/** Publishes `tags` at the digest of another stack's image; builds nothing. */
export class PromotedImage extends pulumi.ComponentResource {
  /** Digest of the promoted manifest list: the source stack's digest, unchanged. */
  public readonly digest: pulumi.Output<string>;
  /** `imageName@digest` in this stack's repository. */
  public readonly imageRef: pulumi.Output<string>;
  public readonly platformDigests: pulumi.Output<Record<string, string>>;
  public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  /** Full refs of the published tags, e.g. `ghcr.io/acme/shop-api:1.2.3`. */
  public readonly tags: pulumi.Output<string[]>;
  /** What each Index reported after pushing (`tag@digest`). */
  public readonly publishedRefs: pulumi.Output<string[]>;
  public readonly sourceStack: pulumi.Output<string>;
  public readonly indexes: dockerBuild.Index[];
  /** The verification every Index depends on (unset without `verification`). */
  public readonly verified?: VerifiedRelease;
  /** What signatures were verified with, as the stack export `signing` shows it, plus digest →
   *  signature referrer found on the registry (unset without `verification`). */
  public readonly signing?: pulumi.Output<StackSigningExport>;

  constructor(name: string, args: PromotedImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:promotion:PromotedImage", name, {}, opts);
    const tagNames = validatePromotion(args, {
      project: pulumi.getProject(),
      stack: pulumi.getStack(),
    });
    const verification = args.verification;
    if (
      verification !== undefined &&
      (args.expectedRevision === undefined || args.gates === undefined)
    ) {
      fail(
        "verification needs expectedRevision (the released commit) and gates (this stack's limits)",
      );
    }
    // With verification the gates decision comes from the signed gates attestation, not from the
    // source stack's gateResults output.
    const requireGatesPassed =
      verification !== undefined ? false : (args.requireGatesPassed ?? true);
    const { sourceStack, imageName } = args;

    const ref = new pulumi.StackReference(
      `${name}-source`,
      { name: sourceStack },
      { parent: this },
    );
    // During a preview the reference may be unknown; the apply then does not run and the check
    // happens on `up`, before any Index is pushed, because every Index input hangs off it.
    const checked = pulumi
      .all([
        ref.getOutput("imageName"),
        ref.getOutput("digest"),
        ref.getOutput("imageRef"),
        ref.getOutput("platformDigests"),
        ref.getOutput("sbomLocations"),
        ref.getOutput("gateResults"),
        ref.getOutput("release"),
      ])
      .apply(
        ([srcImageName, digest, imageRef, platformDigests, sbomLocations, gateResults, release]) =>
          checkSourceOutputs(
            sourceStack,
            imageName,
            {
              imageName: srcImageName,
              digest,
              imageRef,
              platformDigests,
              sbomLocations,
              gateResults,
              release,
            },
            requireGatesPassed,
            args.expectedRevision,
            args.gates,
          ),
      );

    const registry = {
      address: args.registry.address,
      username: args.registry.username,
      password: pulumi.secret(args.registry.password),
    };
    let sourceRef: pulumi.Output<string> = checked.sourceRef;
    if (verification !== undefined) {
      // After the digest basics: a source without a digest is refused for that, not for its key.
      const trust = pulumi
        .all([checked.digest, ref.getOutput("signing")])
        .apply(([, exported]) => trustFor(verification, sourceStack, exported));
      this.verified = new VerifiedRelease(
        `${name}-verify`,
        {
          imageName,
          digest: checked.digest,
          platformDigests: checked.platformDigests,
          expectedRevision: args.expectedRevision,
          gates: args.gates,
          trust,
          tlog: verification.tlog ?? false,
          registryUsername: args.registry.username,
          registryToken: pulumi.secret(args.registry.password),
        },
        { parent: this, additionalSecretOutputs: ["registryToken"] },
      );
      // The Index copies what was verified: the verified digest flows into its source.
      sourceRef = pulumi.interpolate`${checked.sourceRef.apply((r) => r.slice(0, r.lastIndexOf("@")))}@${this.verified.digest}`;
      this.signing = pulumi
        .all([trust, this.verified.signatures])
        .apply(([t, signatures]): StackSigningExport => ({
          mode: verification.mode,
          ...("identity" in t
            ? { identity: t.identity, issuer: t.issuer }
            : { publicKey: t.publicKeyPem }),
          signatures: signatures ?? {},
        }));
    }
    const verified = this.verified;
    this.indexes = tagNames.map(
      (tag) =>
        new dockerBuild.Index(
          `${name}-${tag}`,
          {
            tag: `${imageName}:${tag}`,
            sources: [sourceRef],
            push: true,
            registry,
          },
          // A replaced Index is deleted BY DIGEST by docker-build, which would remove the released
          // image under every tag (and rollbacks with it). Retention belongs to the registry.
          // Nothing is pushed before the verification succeeded.
          {
            parent: this,
            retainOnDelete: true,
            dependsOn: verified !== undefined ? [verified] : [],
          },
        ),
    );

    this.digest = checked.digest;
    this.imageRef = pulumi.interpolate`${imageName}@${checked.digest}`;
    this.platformDigests = checked.platformDigests;
    this.sbomLocations = checked.sbomLocations;
    this.sourceStack = pulumi.output(sourceStack);
    this.publishedRefs = pulumi.all(this.indexes.map((i) => i.ref));
    // The tags export resolves only once every Index is pushed, and only if each landed on the
    // source digest (a registry that rewrote the index would break "prod runs what dev tested").
    this.tags = pulumi
      .all([checked.digest, this.publishedRefs, pulumi.all(this.indexes.map((i) => i.tag))])
      .apply(([digest, refs, tags]) => {
        refs.forEach((r, i) => {
          const at = r.lastIndexOf("@");
          if (at >= 0 && r.slice(at + 1) !== digest) {
            fail(
              `tag ${tags[i]} was published at ${r.slice(at + 1)}, not at the source digest ${digest} from ${JSON.stringify(sourceStack)}`,
            );
          }
        });
        return tags;
      });

    this.registerOutputs({
      digest: this.digest,
      imageRef: this.imageRef,
      platformDigests: this.platformDigests,
      sbomLocations: this.sbomLocations,
      tags: this.tags,
      publishedRefs: this.publishedRefs,
      sourceStack: this.sourceStack,
      signing: this.signing,
    });
  }
}
