// Publication: what a user can pull, written only after the evidence passed. One docker-build
// `Index` merges the judged platform images under the immutable `sha-<40>` tag; then the engine's
// publish step (evidence/publish.ts, run as a child process like the evidence itself) checks that
// this list holds exactly the digests the gates judged and points every other tag at it with a
// cheap tag write (no second index push per tag).
//
// The caller makes this depend on SupplyChainEvidence: a failed gate fails that resource, the
// engine skips its dependents, and no tag moves.
import * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import type { BoundGateResults } from "../evidence/gates";
import type { PublishResult } from "../evidence/publish";
import { engineTail, runEngineProcess } from "./engineProcess";

interface PublishInputs {
  imageName: string;
  indexRef: string;
  tags: string[];
  gateResults: BoundGateResults;
  registryUsername?: string;
  registryToken?: string;
}

async function runPublish(inputs: PublishInputs): Promise<pulumi.dynamic.CreateResult> {
  const { registryToken, ...request } = inputs;
  const child = await runEngineProcess(["publish"], request, registryToken);
  if (child.code !== 0) {
    throw new Error(
      `Publication of ${inputs.imageName}: ${engineTail(child)}\n` +
        `Tags already written point at the new, fully evidenced digest; the others did not move. Run \`pulumi up\` again once the registry ${inputs.imageName.split("/")[0]} answers.`,
    );
  }
  const result = JSON.parse(child.stdout) as PublishResult;
  return { id: result.digest, outs: { digest: result.digest, gateResults: result.gateResults, publishedTags: result.tags, indexRef: inputs.indexRef, tags: inputs.tags } };
}

/** Capture-free, serialized into the state. */
export const publishProvider: pulumi.dynamic.ResourceProvider = {
  create: (inputs: PublishInputs) => runPublish(inputs),
  diff: async (_id: string, olds: { indexRef?: string; tags?: string[] }, news: PublishInputs) => ({
    changes: olds.indexRef !== news.indexRef || JSON.stringify(olds.tags) !== JSON.stringify(news.tags),
    replaces: [],
    deleteBeforeReplace: false,
  }),
  update: async (_id: string, _olds: unknown, news: PublishInputs) => ({ outs: (await runPublish(news)).outs }),
  // Tags stay: retention is the registry's job (the GHCR retention workflow), never a side effect.
  delete: async () => undefined,
};

class PublishedTags extends pulumi.dynamic.Resource {
  declare public readonly digest: pulumi.Output<string>;
  declare public readonly gateResults: pulumi.Output<BoundGateResults>;
  declare public readonly publishedTags: pulumi.Output<string[]>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(publishProvider, name, { ...props, digest: undefined, publishedTags: undefined }, opts, "publication", "Tags");
  }
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
}

export class Publication extends pulumi.ComponentResource {
  public readonly index: dockerbuild.Index;
  /** Digest of the manifest list. */
  public readonly digest: pulumi.Output<string>;
  /** Gate results naming the list's digest too. */
  public readonly gateResults: pulumi.Output<BoundGateResults>;
  public readonly tags: pulumi.Output<string[]>;

  constructor(name: string, args: PublicationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:publication:Publication", name, {}, opts);
    const push = args.push ?? true;
    const primary = [...args.tags].reverse().find((t) => /^sha-[0-9a-f]{40}$/.test(t));
    if (primary === undefined) throw new pulumi.InputPropertyError({ propertyPath: "tags", reason: `must include the immutable sha-<40> tag, got ${JSON.stringify(args.tags)}` });
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
    } else {
      const published = new PublishedTags(
        `${name}-tags`,
        {
          imageName: args.imageName,
          indexRef: this.index.ref,
          tags: args.tags.filter((t) => t !== primary),
          gateResults: args.gateResults,
          registryUsername: args.registryUsername,
          registryToken: args.registryToken !== undefined ? pulumi.secret(args.registryToken) : undefined,
        },
        { parent: this, additionalSecretOutputs: ["registryToken"] },
      );
      this.digest = published.digest;
      this.gateResults = published.gateResults;
      this.tags = pulumi.output(args.tags.map((t) => `${args.imageName}:${t}`));
    }
    this.registerOutputs({ digest: this.digest, tags: this.tags, gateResults: this.gateResults });
  }
}
