// Registry credentials for docker-build. The token only ever travels as a Pulumi secret: it is
// re-wrapped here so a caller that passed a plain Output cannot leak it into state or exports.
import type * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";

export interface RegistryCredentialsArgs {
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5000`. */
  address: string;
  /** Registry user (on GHCR: the GitHub user or `x-access-token` for GITHUB_TOKEN). */
  username: string;
  /** Registry token or password. Always stored as a secret. */
  token: pulumi.Input<string>;
}

export function validateRegistryCredentials(args: Pick<RegistryCredentialsArgs, "address" | "username">): void {
  if (!/^[A-Za-z0-9.[\]:-]+$/.test(args.address)) {
    throw new Error(`RegistryCredentials: address must be a registry host, got "${args.address}"`);
  }
  if (args.username.trim() === "") {
    throw new Error(`RegistryCredentials: username must not be empty, got "${args.username}"`);
  }
}

export class RegistryCredentials extends pulumi.ComponentResource {
  public readonly address: pulumi.Output<string>;
  public readonly username: pulumi.Output<string>;
  /** Secret. */
  public readonly token: pulumi.Output<string>;
  /** Ready to pass as docker-build `registries[]` / Index `registry`. */
  public readonly registry: dockerbuild.types.input.RegistryArgs;

  constructor(name: string, args: RegistryCredentialsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:registry:RegistryCredentials", name, {}, opts);
    validateRegistryCredentials(args);
    this.address = pulumi.output(args.address);
    this.username = pulumi.output(args.username);
    this.token = pulumi.secret(args.token);
    // Only the password is secret, so address and user stay readable in diffs.
    this.registry = { address: this.address, username: this.username, password: this.token };
    // The token is deliberately not registered as an output: component outputs land in state.
    this.registerOutputs({ address: this.address, username: this.username });
  }
}
