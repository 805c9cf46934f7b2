// The factory's own build path for end-to-end tests: one real local Pulumi stack (scripts/local.sh
// up: docker-build on the local buildkitd, pushed to the registry's TLS twin) that
// every e2e file in a mocha process shares, so the images are built once per test run and the
// container checks run against exactly what `npm run local` publishes.
import * as path from "path";
import type { GateResults } from "../../../evidence/gates";
import { PLATFORMS } from "./app";
import { newRunId } from "./exec";
import { LOCAL_REGISTRY, RegistryClient, localRegistryAuth } from "./registry";
import {
  bootstrapOnce,
  copyApp,
  headSha,
  localStackConfig,
  requireLocalStackTools,
  STACK_REGISTRY,
  TestStack,
} from "./pulumiStack";

/** What every stack that publishes exports, a promoting one included (design.md). */
export interface PublishedOutputs {
  imageName: string;
  digest: string;
  imageRef: string;
  platformDigests: Record<string, string>;
  tags: string[];
}

/** The stack-export contract (design.md) as the tests read it. */
export interface FactoryOutputs extends PublishedOutputs {
  cacheRefs: Record<string, string>;
  sbomLocations?: Record<string, string>;
  gateResults?: GateResults;
}

export interface FactoryStackSettings {
  /** Repository on the local registry, e.g. `image-factory/e2e-abc`. */
  repository: string;
  /** Build context (a copy of app/, see copyApp). */
  appDir: string;
  /** Commit the tags and labels come from (pinned, so a commit landing mid-run changes nothing). */
  sha: string;
  /** @default all three platforms */
  platforms?: readonly string[];
  /** @default refs/heads/main */
  gitRef?: string;
  /** Repository of the registry cache. @default `<repository>-cache` */
  cacheRepository?: string;
  /** Replaces the committed base image (image-factory:baseImage). */
  baseImage?: string;
}

/** Stack config for a test stack: the committed local settings with this run's repository, context and commit. */
export function factoryStackConfig(s: FactoryStackSettings): Record<string, unknown> {
  const config: Record<string, unknown> = {
    ...localStackConfig(),
    "image-factory:imageName": `${STACK_REGISTRY}/${s.repository}`,
    "image-factory:cache": {
      type: "registry",
      mode: "max",
      ref: `${STACK_REGISTRY}/${s.cacheRepository ?? `${s.repository}-cache`}`,
    },
    "image-factory:appPath": s.appDir,
    "image-factory:platforms": [...(s.platforms ?? PLATFORMS)],
    "image-factory:gitRef": s.gitRef ?? "refs/heads/main",
    "image-factory:gitSha": s.sha,
  };
  if (s.baseImage !== undefined) config["image-factory:baseImage"] = s.baseImage;
  return config;
}

export interface SharedFactoryStack {
  stack: TestStack;
  repository: string;
  cacheRepository: string;
  /** The stack's build context (a copy of app/). */
  appDir: string;
  sha: string;
  /** The exports right after `pulumi up`. */
  outputs: FactoryOutputs;
}

let shared: Promise<SharedFactoryStack> | undefined;

/**
 * The shared stack, brought up on first use (bootstrap, then a real `pulumi up` of all three
 * platforms) and reused by every later caller in this process. A failed bring-up fails every
 * caller with the same error rather than building again.
 *
 * Callers may read, pull and preview, but must not `up`, `destroy` or reconfigure it, and must
 * restore any file they change under `appDir` before their test ends: other files' tests rely on
 * the exports matching the registry and the tree matching the deployed state. A test that needs
 * a changed build makes its own TestStack (another repository, so the shared tags never move).
 * The stack's backend is removed when the process exits (IF_E2E_KEEP=1 keeps it).
 */
export function sharedFactoryStack(): Promise<SharedFactoryStack> {
  shared ??= (async () => {
    await bootstrapOnce();
    requireLocalStackTools();
    const runId = newRunId();
    const repository = `image-factory/e2e-${runId}`;
    const cacheRepository = `${repository}-cache`;
    const stack = new TestStack(`e2e-${runId}`, {});
    if (process.env.IF_E2E_KEEP !== "1") process.once("exit", () => stack.remove());
    const appDir = copyApp(path.join(stack.dir, "app"));
    const sha = await headSha();
    stack.setConfig(factoryStackConfig({ repository, appDir, sha, cacheRepository }));
    await stack.up();
    const outputs = await stack.outputs<FactoryOutputs>();
    return { stack, repository, cacheRepository, appDir, sha, outputs };
  })();
  return shared;
}

/** What an e2e file that deploys factory stacks of its own shares between its tests. */
export interface OwnFactoryStacks {
  /** Unique to this run, so that runs never share a repository or a stack name. */
  runId: string;
  /** `image-factory/<name>-<runId>` on the local registry. */
  repository: string;
  /** The commit the stacks build (set by the `before` hook). */
  sha: string;
  /** The local registry (set by the `before` hook). */
  registry: RegistryClient;
  /** A stack `<name>-<stackName>-<runId>` with its own copy of app/ as `appDir`, not configured. */
  newStack(stackName: string): { stack: TestStack; appDir: string };
}

/**
 * Sets up an e2e file's own factory stacks: call it at the top of `describe`, so that its `before`
 * (bootstrap, tools, commit, registry) runs ahead of the file's own hooks and its `after` removes
 * every stack `newStack` made (IF_E2E_KEEP=1 keeps them).
 */
export function ownFactoryStacks(name: string): OwnFactoryStacks {
  const runId = newRunId();
  const stacks: TestStack[] = [];
  const own: OwnFactoryStacks = {
    runId,
    repository: `image-factory/${name}-${runId}`,
    sha: "",
    registry: undefined as unknown as RegistryClient,
    newStack(stackName) {
      const stack = new TestStack(`${name}-${stackName}-${runId}`, {});
      stacks.push(stack);
      return { stack, appDir: copyApp(path.join(stack.dir, "app")) };
    },
  };
  before(async function () {
    await bootstrapOnce();
    requireLocalStackTools();
    own.sha = await headSha();
    own.registry = new RegistryClient(LOCAL_REGISTRY, localRegistryAuth());
  });
  after(() => {
    if (process.env.IF_E2E_KEEP !== "1") for (const s of stacks) s.remove();
  });
  return own;
}

/** The tags a user pulls: without a build's per-platform `sha-<7>-<platform>` tags and the
 *  coverage image's tag, which a run that fails its gates may still push. */
export function userTags(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([k]) => !/-linux-|-coverage$/.test(k)));
}
