// The dynamic resource every engine step (evidence, publish, verify) is: its provider's outputs
// are declared as undefined inputs, so the SDK exposes them as the resource's output properties.
import * as pulumi from "@pulumi/pulumi";

export class EngineStepResource extends pulumi.dynamic.Resource {
  /**
   * @param token `[module, type]`: the resource type `pulumi-nodejs:dynamic/<module>:<type>`.
   * @param outputs what the provider returns beyond the inputs.
   */
  constructor(
    provider: pulumi.dynamic.ResourceProvider,
    token: [string, string],
    outputs: readonly string[],
    name: string,
    props: pulumi.Inputs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    const slots = Object.fromEntries(outputs.map((k) => [k, undefined]));
    super(provider, name, { ...props, ...slots }, opts, token[0], token[1]);
  }
}
