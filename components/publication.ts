// Publication: what a user can pull, written only after the evidence passed. One docker-build
// `Index` merges the judged platform images under the immutable `sha-<40>` tag; then the engine's
// publish step (evidence/publish.ts, run as a child process like the evidence itself) checks that
// this list holds exactly the digests the gates judged and points every other tag at it with a
// cheap tag write (no second index push per tag).
//
// With a signer (`signing`), the publish step signs the list's digest and every platform digest and
// attests the gates, the SBOMs and SLSA provenance (docs/signing.md) after the binding check and
// before the first tag write. The key-mode private key is a secret input of the Tags resource and
// reaches the engine only through its environment (IMAGE_FACTORY_SIGNING_KEY).
//
// The caller makes this depend on SupplyChainEvidence: a failed gate fails that resource, the
// engine skips its dependents, and no tag moves.
import * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import type { BoundGateResults } from "../evidence/gates";
import type { PublishRequest, PublishResult, SigningRequest } from "../evidence/publish";
import { engineTail, runEngineProcess } from "./engineProcess";
import { EngineStepResource } from "./engineStepResource";

/** The publish step's request as the provider receives it: the token and the key-mode private key
 *  are secret inputs, decrypted only in the provider and handed to the engine on its stdin. */
type PublishInputs = PublishRequest;

async function runPublish(inputs: PublishInputs): Promise<pulumi.dynamic.CreateResult> {
  const { registryToken, signingKey, ...request } = inputs;
  const child = await runEngineProcess(["publish"], request, registryToken, {
    IMAGE_FACTORY_SIGNING_KEY: signingKey,
  });
  if (child.code !== 0) {
    throw new Error(
      `Publication of ${inputs.imageName}: ${engineTail(child)}\n` +
        `Tags already written point at the new, fully evidenced (and signed) digest; the others did not move. Run \`pulumi up\` again once the cause is fixed (e.g. the registry ${inputs.imageName.split("/")[0]} answers).`,
    );
  }
  const result = JSON.parse(child.stdout) as PublishResult;
  return {
    id: result.digest,
    outs: {
      digest: result.digest,
      gateResults: result.gateResults,
      publishedTags: result.tags,
      indexRef: inputs.indexRef,
      tags: inputs.tags,
      signatures: result.signatures ?? {},
      // How long signing took and what it made or found already verified (docs/signing.md).
      signingReport: result.signing ?? null,
    },
  };
}

/** Capture-free, serialized into the state. */
export const publishProvider: pulumi.dynamic.ResourceProvider = {
  create: (inputs: PublishInputs) => runPublish(inputs),
  diff: async (_id: string, olds: { indexRef?: string; tags?: string[] }, news: PublishInputs) => ({
    changes:
      olds.indexRef !== news.indexRef || JSON.stringify(olds.tags) !== JSON.stringify(news.tags),
    replaces: [],
    deleteBeforeReplace: false,
  }),
  update: async (_id: string, _olds: unknown, news: PublishInputs) => ({
    outs: (await runPublish(news)).outs,
  }),
  // Tags stay: retention is the registry's job (the GHCR retention workflow), never a side effect.
  delete: async () => undefined,
};

class PublishedTags extends EngineStepResource {
  declare public readonly digest: pulumi.Output<string>;
  declare public readonly gateResults: pulumi.Output<BoundGateResults>;
  declare public readonly publishedTags: pulumi.Output<string[]>;
  declare public readonly signatures: pulumi.Output<Record<string, string>>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    const outputs = ["digest", "publishedTags", "signatures", "signingReport"];
    super(publishProvider, ["publication", "Tags"], outputs, name, props, opts);
  }
}

/** What signs, as the publish step needs it (docs/signing.md). Nothing here is secret except
 *  `privateKeyPem`, which only ever travels as a secret input to the engine's environment. */
export interface PublicationSigning {
  mode: "key" | "kms" | "keyless";
  /** @default false */
  tlog?: boolean;
  /** kms: `awskms:///…`. */
  keyRef?: pulumi.Input<string>;
  /** key and kms: the public key existing signatures are verified with. */
  publicKeyPem?: pulumi.Input<string>;
  /** key: the private key (always handled as a secret). */
  privateKeyPem?: pulumi.Input<string>;
  /** keyless: the identity and issuer signatures carry. */
  identity?: string;
  issuer?: string;
  /** Platform → the evidence's SPDX SBOM file (SupplyChainEvidence.platforms[p].sbomPath). */
  sbomPaths: pulumi.Input<Record<string, string>>;
  provenance: SigningRequest["provenance"];
}

export interface PublicationArgs {
  imageName: string;
  /** Platform image refs (`repo:tag@digest`), the sources of the manifest list. */
  sources: pulumi.Input<string>[];
  /** Tag names; the last immutable `sha-<40>` one is pushed by the Index, the rest are tag writes. */
  tags: string[];
  /** From SupplyChainEvidence: what the list must hold. */
  gateResults: pulumi.Input<BoundGateResults>;
  registry?: dockerbuild.types.input.RegistryArgs;
  registryUsername?: string;
  registryToken?: pulumi.Input<string>;
  /** @default true */
  push?: boolean;
  /** Sign and attest before any tag moves; unset = no signatures. */
  signing?: PublicationSigning;
}

export class Publication extends pulumi.ComponentResource {
  public readonly index: dockerbuild.Index;
  /** Digest of the manifest list. */
  public readonly digest: pulumi.Output<string>;
  /** Gate results naming the list's digest too. */
  public readonly gateResults: pulumi.Output<BoundGateResults>;
  public readonly tags: pulumi.Output<string[]>;
  /** Digest (the list and each platform) → its signature's referrer manifest; `{}` unsigned. */
  public readonly signatures: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: PublicationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:publication:Publication", name, {}, opts);
    const push = args.push ?? true;
    const primary = [...args.tags].reverse().find((t) => /^sha-[0-9a-f]{40}$/.test(t));
    if (primary === undefined)
      throw new pulumi.InputPropertyError({
        propertyPath: "tags",
        reason: `must include the immutable sha-<40> tag, got ${JSON.stringify(args.tags)}`,
      });
    this.index = new dockerbuild.Index(
      `${name}-index`,
      { tag: `${args.imageName}:${primary}`, sources: args.sources, push, registry: args.registry },
      // docker-build deletes a replaced Index's manifest BY DIGEST, which would also remove every
      // other tag (and a promoted prod release) sharing it.
      { parent: this, retainOnDelete: true },
    );
    if (!push) {
      this.digest = this.index.ref.apply((r) => r.slice(r.lastIndexOf("@") + 1));
      this.gateResults = pulumi.output(args.gateResults);
      this.tags = pulumi.output([]);
      this.signatures = pulumi.output<Record<string, string>>({});
    } else {
      const sg = args.signing;
      const signing =
        sg === undefined
          ? undefined
          : {
              mode: sg.mode,
              tlog: sg.tlog ?? false,
              keyRef: sg.keyRef,
              publicKeyPem: sg.publicKeyPem,
              identity: sg.identity,
              issuer: sg.issuer,
              sbomPaths: sg.sbomPaths,
              provenance: sg.provenance,
            };
      const published = new PublishedTags(
        `${name}-tags`,
        {
          imageName: args.imageName,
          indexRef: this.index.ref,
          tags: args.tags.filter((t) => t !== primary),
          gateResults: args.gateResults,
          registryUsername: args.registryUsername,
          registryToken:
            args.registryToken !== undefined ? pulumi.secret(args.registryToken) : undefined,
          signing,
          signingKey: sg?.privateKeyPem !== undefined ? pulumi.secret(sg.privateKeyPem) : undefined,
        },
        // The diff (indexRef, tags) is unchanged by signing: a no-op `pulumi up` signs nothing.
        { parent: this, additionalSecretOutputs: ["registryToken", "signingKey"] },
      );
      this.digest = published.digest;
      this.gateResults = published.gateResults;
      this.tags = pulumi.output(args.tags.map((t) => `${args.imageName}:${t}`));
      this.signatures = published.signatures.apply((s) => s ?? {});
    }
    this.registerOutputs({
      digest: this.digest,
      tags: this.tags,
      gateResults: this.gateResults,
      signatures: this.signatures,
    });
  }
}
