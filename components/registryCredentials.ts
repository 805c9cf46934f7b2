// Registry credentials for docker-build, as awsx's getDockerCredentials: a plain function (it
// creates nothing). The token only ever travels as a Pulumi secret, and on `pulumi up` it is handed
// on only after the registry has accepted it, so a wrong token fails before anything is built,
// with a message that names the registry, the user and what to do.
import type * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { credentialsProblem, probeInsecure } from "../evidence/oci";
import { REGISTRY_HOST, isLoopbackRegistry } from "./reference";

export interface RegistryCredentialsArgs {
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5443`. */
  address: string;
  /** Registry user (on GHCR: the GitHub user or `x-access-token` for GITHUB_TOKEN). */
  username: string;
  /** Registry token or password. Always a secret. */
  token: pulumi.Input<string>;
  /** Repository (without registry) the stack pushes to, for the push-scope check. */
  repository: string;
}

export interface RegistryCredentials {
  address: string;
  username: string;
  /** Secret; resolves only once the registry accepted it (on `pulumi up`). */
  token: pulumi.Output<string>;
  /** Ready to pass as docker-build `registries[]` / Index `registry`. */
  registry: dockerbuild.types.input.RegistryArgs;
}

export function validateRegistryCredentials(
  args: Pick<RegistryCredentialsArgs, "address" | "username">,
): void {
  if (!REGISTRY_HOST.test(args.address)) {
    throw new pulumi.InputPropertyError({
      propertyPath: "address",
      reason: `must be a registry host, got "${args.address}"`,
    });
  }
  if (args.username.trim() === "") {
    throw new pulumi.InputPropertyError({
      propertyPath: "username",
      reason: `must not be empty, got "${args.username}"`,
    });
  }
}

export function registryCredentials(args: RegistryCredentialsArgs): RegistryCredentials {
  validateRegistryCredentials(args);
  const token = pulumi.secret(args.token).apply(async (t) => {
    if (pulumi.runtime.isDryRun()) return t;
    const problem = await probeInsecure(args.address)
      .then((insecure) =>
        credentialsProblem(
          { registry: args.address, username: args.username, password: t, insecure },
          args.repository,
        ),
      )
      // Off loopback an unreachable registry is docker-build's to report (it retries); here only a refusal stops the run.
      .catch((e: unknown) =>
        isLoopbackRegistry(args.address)
          ? `registry ${args.address}: ${e instanceof Error ? e.message : String(e)}`
          : undefined,
      );
    if (problem !== undefined) {
      throw new pulumi.RunError(
        `registryCredentials: ${problem}. Nothing was built or pushed. Next: set a valid token with \`pulumi config set --secret image-factory:registryToken\` (user image-factory:registryUsername=${args.username}) and run \`pulumi up\` again.`,
      );
    }
    return t;
  });
  return {
    address: args.address,
    username: args.username,
    token,
    registry: { address: args.address, username: args.username, password: token },
  };
}
