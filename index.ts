// Entry point of `pulumi up`: read the whole `image-factory` namespace, refuse bad input before a
// single resource is registered, wire the components, export the stack contract (design.md).
import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { decodeRawConfig, localGitContext, NAMESPACE, validateConfig } from "./components/config";
import { createFactory } from "./components/program";

// The SDK knows which config keys the engine holds as secrets but does not type the function.
const isSecret = (runtimeConfig as unknown as { isConfigSecret: (key: string) => boolean })
  .isConfigSecret;

const stack = pulumi.getStack();
const all = pulumi.runtime.allConfig();
const raw = decodeRawConfig(all);
const cfg = validateConfig(raw, {
  stack,
  env: process.env,
  localGit: () => localGitContext(__dirname),
  secretKeys: new Set(Object.keys(raw).filter((k) => isSecret(`${NAMESPACE}:${k}`))),
});
// The token is read through Config.requireSecret so it is a secret Output from its first use.
const config = new pulumi.Config(NAMESPACE);
const out = createFactory({
  ...cfg,
  stack,
  registryToken: cfg.hasRegistryToken ? config.requireSecret("registryToken") : undefined,
});

// Only what this stack has: an export set to undefined makes the engine warn "Undefined value …
// will not show as a stack output" on every preview (noise in PR comments). CI reads builderTls
// with `pulumi stack output --show-secrets builderTls` to reach the hosts.
export = Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
