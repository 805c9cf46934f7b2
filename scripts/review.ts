// `npm run review -- --stack <stack> [--out review.md]`: what a merge of the working tree would ship,
// next to what the stack ships today (docs/delivery.md, "Pull-request review").
//
//  1. Build, for real: the factory program itself (index.ts) runs on a throwaway review stack under
//     the TARGET stack's name (so it takes that stack's builders and cache settings) in its own
//     file backend, `.local/review/<stack>/`, configured from the target's committed config with:
//       - imageName → `<imageName>-review`, the quarantine repository nobody pulls from;
//       - publish: false → per-platform images (and the coverage stage) by digest only: no
//         evidence resource, no manifest list, no tag, no GitHub settings, no build hosts;
//         cache writes scoped to `review` (or `pr-<n>` on a pull request), never main's;
//       - gitRef/gitSha → what the merge builds (refs/heads/<defaultBranch>, the working tree's
//         commit), unless GITHUB_REF is a pull request's merge ref.
//     `pulumi up --continue-on-error`, so one failing platform does not hide the others; a failing
//     platform is named with the Dockerfile stage and step from the BuildKit output.
//  2. Evidence, never blocking: the evidence engine (evidence/run.ts, what `npm run evidence` and
//     `pulumi up` run) on the platform digests that built. Its gate results are shown, pass or
//     fail, exactly as they would block the merge's deploy.
//  3. What ships today: the target's exports (platformDigests, sbomLocations, gateResults), its
//     SBOMs (or Syft on the current digest when the file is gone), Trivy on the current digest
//     with the same DB, registry manifests for size and layers, and the tags a merge would move.
//  4. Renders review/ (Markdown on stdout, `--out x.md` plus `x.json`), with a compact
//     `pulumi preview --diff` of the target stack.
//
// Exit: 0 the merge's deploy would pass, 1 it would fail (build or gate), 2 no review was made.
//
// Two ways to reach the target stack:
//  - local (this machine's file backends; `scripts/local.sh review`, or `npm run review` which
//    goes through it): outputs and preview through scripts/local.sh with IF_LOCAL_DIR / IF_STACK /
//    IF_STACK_CONFIG, the review build through scripts/local.sh with the review's own IF_LOCAL_DIR;
//  - service (CI: the logged-in backend, e.g. Pulumi Cloud with a Stack Read token): `pulumi stack
//    output` on the stack, the review build on a file backend of its own (the token can neither
//    create stacks nor write config there), the registry credential from
//    IMAGE_FACTORY_REGISTRY_TOKEN (and IMAGE_FACTORY_REGISTRY_USERNAME): in CI it can push to the
//    quarantine package only, so the review's registry cache lives there too. The preview comes
//    from `--preview-file` (the preview job's output) or `pulumi preview` on the stack.
//
// Modules: scripts/review/pure.ts (config, build-failure parser, compact preview), stacks.ts (how
// stacks are reached), candidate.ts (the review build and its evidence), make.ts (the review).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { renderJson, renderMarkdown } from "../review";
import { makeReview } from "./review/make";
import { jsonPathFor } from "./review/pure";
import { REPO_ROOT, say } from "./review/stacks";

const USAGE = `usage: npm run review -- --stack <stack> [--out review.md] [--sha <40 hex>] [--review-dir <dir>] [--no-preview | --preview-file <file>] [--build | --no-build] [--backend local|service]
       scripts/local.sh review [same options]   (IF_LOCAL_DIR / IF_STACK / IF_STACK_CONFIG name the target, as for \`up\`)`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      stack: { type: "string" },
      out: { type: "string" },
      sha: { type: "string" },
      "review-dir": { type: "string" },
      "no-preview": { type: "boolean" },
      "preview-file": { type: "string" },
      build: { type: "boolean" },
      "no-build": { type: "boolean" },
      backend: { type: "string" },
      "stack-config": { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stack = values.stack ?? process.env.IF_STACK ?? "local";
  if (!/^[A-Za-z0-9_.-]+$/.test(stack))
    throw new Error(`--stack must be a stack name (dev, local, …), got ${JSON.stringify(stack)}`);
  const localDir = path.resolve(process.env.IF_LOCAL_DIR ?? path.join(REPO_ROOT, ".local"));
  const hasLocalStack = fs.existsSync(
    path.join(localDir, "state", ".pulumi", "stacks", "image-factory", `${stack}.json`),
  );
  const backend =
    values.backend ??
    (process.env.IF_REVIEW_LOCAL === "1" || process.env.IF_LOCAL_DIR !== undefined || hasLocalStack
      ? "local"
      : "service");
  if (backend !== "local" && backend !== "service")
    throw new Error(`--backend must be local or service, got ${JSON.stringify(backend)}`);

  // Local reviews run inside scripts/local.sh: it trusts the local registry's CA (Node reads
  // NODE_EXTRA_CA_CERTS only at start) and puts the pinned tools on PATH.
  if (backend === "local" && process.env.IF_REVIEW_LOCAL !== "1") {
    const child = spawn(
      "bash",
      [path.join(REPO_ROOT, "scripts", "local.sh"), "review", ...process.argv.slice(2)],
      { stdio: "inherit", env: { ...process.env, IF_STACK: stack } },
    );
    return new Promise((resolve) => child.on("close", (code) => resolve(code ?? 2)));
  }

  const stackConfig = path.resolve(
    values["stack-config"] ??
      (backend === "local" ? process.env.IF_STACK_CONFIG : undefined) ??
      path.join(REPO_ROOT, `Pulumi.${stack}.yaml`),
  );
  const reviewDir = path.resolve(
    values["review-dir"] ??
      process.env.IF_REVIEW_DIR ??
      path.join(REPO_ROOT, ".local", "review", stack),
  );
  if (values.build === true && values["no-build"] === true)
    throw new Error("--build and --no-build contradict each other");
  if (values["preview-file"] !== undefined && values["no-preview"] === true)
    throw new Error("--preview-file and --no-preview contradict each other");
  const hasToken = (process.env.IMAGE_FACTORY_REGISTRY_TOKEN ?? "") !== "";
  // --build (CI's review job) fails rather than quietly reviewing less than was asked for.
  if (values.build === true && backend === "service" && !hasToken)
    throw new Error(
      '--build on the service backend needs IMAGE_FACTORY_REGISTRY_TOKEN, the quarantine package\'s push credential (docs/delivery.md, "Trust model"); it is not set',
    );
  const { review, blocked, timings } = await makeReview({
    stack,
    out: values.out,
    sha: values.sha,
    reviewDir,
    preview: values["no-preview"] !== true,
    previewFile: values["preview-file"],
    // Without the quarantine package's push credential a service-backend review builds nothing
    // (a job without the `pr-review` environment: docs/delivery.md, "Trust model").
    build: values["no-build"] !== true && (backend === "local" || hasToken),
    mode: backend,
    stackConfig,
    localDir,
  });
  const markdown = renderMarkdown(review);
  if (values.out !== undefined) {
    fs.writeFileSync(values.out, markdown);
    fs.writeFileSync(jsonPathFor(values.out), renderJson(review));
  }
  fs.writeFileSync(path.join(reviewDir, "timings.json"), `${JSON.stringify(timings, null, 2)}\n`);
  process.stdout.write(markdown);
  say(
    `done in ${timings.total} s (${Object.entries(timings)
      .filter(([k]) => k !== "total")
      .map(([k, v]) => `${k} ${v} s`)
      .join(", ")}); the merge's deploy would ${blocked ? "FAIL" : "pass"}`,
  );
  return blocked ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`review: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
}
