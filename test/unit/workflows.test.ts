// The delivery workflows, parsed and checked against literal expectations — triggers, the
// permission map of every job, which secrets each job can read and where they live, OIDC roles,
// concurrency, the pinned action table, `--ignore-scripts`, `suppress-outputs`, the release
// ancestry check, the review/comment split, the tool installs, Dependabot, and the policies in
// docs/delivery.md. Pure: it reads files only and needs no tool on PATH. The checks that run
// actionlint, shellcheck, buildx and the comment script live in
// test/integration/workflows.actionlint.test.ts.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const REPO = path.resolve(__dirname, "../..");
const WORKFLOWS = path.join(REPO, ".github/workflows");
const ACTIONS = path.join(REPO, ".github/actions");

type Json = Record<string, unknown>;
interface Step extends Json {
  name?: string;
  uses?: string;
  run?: string;
  with?: Json;
  env?: Json;
  if?: string;
  id?: string;
}
interface Job extends Json {
  permissions?: unknown;
  steps?: Step[];
  uses?: string;
  if?: string;
  needs?: string | string[];
  env?: Json;
  environment?: unknown;
  concurrency?: { group?: string; "cancel-in-progress"?: boolean };
  strategy?: { matrix?: Json };
}
interface Workflow {
  file: string;
  text: string;
  doc: { on: Json; permissions?: unknown; jobs: Record<string, Job>; concurrency?: unknown };
}

function loadWorkflows(): Workflow[] {
  return fs
    .readdirSync(WORKFLOWS)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(WORKFLOWS, file), "utf8");
      return { file, text, doc: parse(text) as Workflow["doc"] };
    });
}

function workflow(name: string): Workflow {
  const w = loadWorkflows().find((x) => x.file === name);
  assert.ok(w, `.github/workflows/${name} is missing`);
  return w;
}

function job(file: string, id: string): Job {
  const j = workflow(file).doc.jobs[id];
  assert.ok(j, `${file} has no job ${id}`);
  return j;
}

function allJobs(): Array<{ file: string; id: string; job: Job }> {
  return loadWorkflows().flatMap((w) =>
    Object.entries(w.doc.jobs).map(([id, j]) => ({ file: w.file, id, job: j })),
  );
}

function compositeAction(name: string): { runs: { using: string; steps: Step[] } } {
  const file = path.join(ACTIONS, name, "action.yml");
  assert.ok(fs.existsSync(file), `${path.relative(REPO, file)} is missing`);
  return parse(fs.readFileSync(file, "utf8")) as { runs: { using: string; steps: Step[] } };
}

/** Names of the secrets a piece of workflow mentions (values or `!= ''` presence checks). */
function secretNames(value: unknown): string[] {
  const text = typeof value === "string" ? value : JSON.stringify(value ?? {});
  return [...new Set([...text.matchAll(/secrets\.([A-Za-z0-9_]+)/g)].map((m) => m[1]))].sort();
}

/** Secret values a piece of workflow hands over; `secrets.X != ''` only tells whether one is set. */
function secretValues(value: unknown): string[] {
  const text = JSON.stringify(value ?? {});
  return [...text.matchAll(/secrets\.([A-Za-z0-9_]+)\b(?!\s*!=\s*'')/g)].map((m) => m[1]);
}

function perms(j: Job): Record<string, string> {
  assert.ok(
    typeof j.permissions === "object" && j.permissions !== null,
    "permissions must be a map",
  );
  return j.permissions as Record<string, string>;
}

function stepNamed(j: Job, name: string): Step {
  const s = (j.steps ?? []).find((x) => x.name === name);
  assert.ok(s, `no step named "${name}"`);
  return s;
}

function indexOfStep(j: Job, pred: (s: Step) => boolean, what: string): number {
  const i = (j.steps ?? []).findIndex(pred);
  assert.ok(i >= 0, `no step: ${what}`);
  return i;
}

/** The env of a pulumi/actions step: the Pulumi token and the github provider's token. */
function pulumiStepEnv(pulumiSecret: string, githubToken: string): Json {
  return {
    PULUMI_ACCESS_TOKEN: `\${{ secrets.${pulumiSecret} }}`,
    GITHUB_TOKEN: githubToken,
    GITHUB_OWNER: "${{ github.repository_owner }}",
  };
}

/** The remote-builders inputs: the stack output read with `pulumiSecret`, the three PEMs. */
function builderInputs(pulumiSecret: string): Json {
  return {
    stack: "${{ env.STACK }}",
    "pulumi-access-token": `\${{ secrets.${pulumiSecret} }}`,
    "ca-pem": "${{ secrets.BUILDKIT_CA_PEM }}",
    "client-cert-pem": "${{ secrets.BUILDKIT_CLIENT_CERT_PEM }}",
    "client-key-pem": "${{ secrets.BUILDKIT_CLIENT_KEY_PEM }}",
  };
}

/** The step that uploads `<kind>.{txt,md}` as the artifact `<kind>-<stack>`, checked. */
function artifactUpload(j: Job, name: string, kind: "preview" | "review"): Step {
  const upload = stepNamed(j, name);
  assert.equal(upload.uses, `actions/upload-artifact@${PINS["actions/upload-artifact"].sha}`);
  assert.deepEqual(upload.with, {
    name: `${kind}-\${{ matrix.stack }}`,
    path: kind === "preview" ? "preview.txt" : "review.md",
    "if-no-files-found": "error",
    "retention-days": 5,
  });
  return upload;
}

const isNpmInstall = (s: Step): boolean =>
  typeof s.run === "string" && /\bnpm\s+(ci|install|i)\b/.test(s.run);

/** The external actions and the exact line each must be used with: the sha was read from the
 *  action's repository for that tag, and its inputs from its action.yml (docs/delivery.md). */
const PINS: Record<string, { sha: string; version: string }> = {
  "actions/checkout": { sha: "3d3c42e5aac5ba805825da76410c181273ba90b1", version: "v7.0.1" },
  "actions/setup-node": { sha: "820762786026740c76f36085b0efc47a31fe5020", version: "v7.0.0" },
  "actions/setup-go": { sha: "b7ad1dad31e06c5925ef5d2fc7ad053ef454303e", version: "v7.0.0" },
  "actions/cache": { sha: "27d5ce7f107fe9357f9df03efb73ab90386fccae", version: "v5.0.5" },
  "actions/upload-artifact": {
    sha: "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
    version: "v7.0.0",
  },
  "actions/download-artifact": {
    sha: "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",
    version: "v8.0.1",
  },
  "aws-actions/configure-aws-credentials": {
    sha: "e6de054238d6b7531b4efff3b6587d9aade6a06c",
    version: "v6.2.3",
  },
  "pulumi/actions": { sha: "8e5e406f4007fca908480587cb9893c07090f58d", version: "v7.0.0" },
};

function usesLines(): Array<{ where: string; line: string }> {
  const files = [
    ...fs.readdirSync(WORKFLOWS).map((f) => path.join(WORKFLOWS, f)),
    ...fs.readdirSync(ACTIONS).map((d) => path.join(ACTIONS, d, "action.yml")),
  ];
  return files.flatMap((f) =>
    fs
      .readFileSync(f, "utf8")
      .split("\n")
      .map((line, i) => ({ where: `${path.relative(REPO, f)}:${i + 1}`, line: line.trim() }))
      .filter(({ line }) => /^(-\s*)?uses:/.test(line)),
  );
}

/** The ```json blocks of docs/delivery.md, parsed. */
function deliveryJsonBlocks(): Json[] {
  const doc = fs.readFileSync(path.join(REPO, "docs/delivery.md"), "utf8");
  return [...doc.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => JSON.parse(m[1]) as Json);
}

interface TrustStatement {
  Effect: string;
  Action: string;
  Principal: { Federated: string };
  Condition: Record<string, Record<string, string | string[]>>;
}

function trustPolicies(): Array<{ subject: unknown; statement: TrustStatement }> {
  return deliveryJsonBlocks()
    .filter((b) =>
      ((b.Statement as TrustStatement[] | undefined) ?? []).some(
        (s) => s.Action === "sts:AssumeRoleWithWebIdentity",
      ),
    )
    .map((b) => {
      const statements = b.Statement as TrustStatement[];
      assert.equal(statements.length, 1, "one trust statement per role");
      const st = statements[0];
      const sub = Object.values(st.Condition)
        .map((c) => c["token.actions.githubusercontent.com:sub"])
        .find((v) => v !== undefined);
      return { subject: sub, statement: st };
    });
}

describe("delivery workflows (.github/workflows)", () => {
  it("have the expected triggers and never run pull_request_target or workflow_run", async () => {
    const pr = workflow("pr.yml").doc.on;
    assert.deepEqual(Object.keys(pr), ["pull_request"]);
    assert.deepEqual((pr.pull_request as Json).branches, ["main"]);
    const main = workflow("main.yml").doc.on;
    assert.deepEqual(Object.keys(main), ["push"]);
    assert.deepEqual((main.push as Json).branches, ["main"]);
    const release = workflow("release.yml").doc.on;
    assert.deepEqual(Object.keys(release), ["push"]);
    assert.deepEqual((release.push as Json).tags, ["v*"]);
    assert.equal((release.push as Json).branches, undefined);
    assert.deepEqual(Object.keys(workflow("test.yml").doc.on), ["workflow_call"]);
    assert.deepEqual(Object.keys(workflow("ghcr-retention.yml").doc.on).sort(), [
      "schedule",
      "workflow_dispatch",
    ]);
    for (const w of loadWorkflows()) {
      assert.ok(!("pull_request_target" in w.doc.on), `${w.file} uses pull_request_target`);
      assert.ok(!("workflow_run" in w.doc.on), `${w.file} uses workflow_run`);
    }
  });

  it("grant nothing by default, and exactly these permissions per job", async () => {
    for (const w of loadWorkflows()) {
      assert.deepEqual(w.doc.permissions, {}, `${w.file}: top-level permissions must be {}`);
      assert.doesNotMatch(w.text, /write-all|read-all/, `${w.file} uses a blanket permission`);
    }
    const actual = Object.fromEntries(
      allJobs().map(({ file, id, job: j }) => [`${file}:${id}`, perms(j)]),
    );
    assert.deepEqual(actual, {
      "ghcr-retention.yml:prune": { packages: "write" },
      "main.yml:test": { contents: "read" },
      "main.yml:deploy-dev": { contents: "read", "id-token": "write", packages: "write" },
      "pr.yml:test": { contents: "read" },
      "pr.yml:preview-unavailable": {},
      "pr.yml:preview": { contents: "read", "id-token": "write", packages: "read" },
      // The review pushes with its own quarantine-only credential, never GITHUB_TOKEN's packages.
      "pr.yml:review": { contents: "read" },
      "pr.yml:comment": { "pull-requests": "write" },
      "release.yml:promote-prod": { contents: "read", packages: "write" },
      "test.yml:test": { contents: "read" },
    });
  });

  it("give each job only its own secrets, deploy credentials only from an environment", async () => {
    const actual = Object.fromEntries(
      allJobs().map(({ file, id, job: j }) => [`${file}:${id}`, secretNames(j)]),
    );
    assert.deepEqual(actual, {
      "ghcr-retention.yml:prune": [],
      "main.yml:test": [],
      "main.yml:deploy-dev": [
        "BUILDKIT_CA_PEM",
        "BUILDKIT_CLIENT_CERT_PEM",
        "BUILDKIT_CLIENT_KEY_PEM",
        "FACTORY_GITHUB_TOKEN",
        "PULUMI_ACCESS_TOKEN",
        "REGISTRY_TOKEN",
        "SLACK_WEBHOOK_URL",
        "TEAMS_WEBHOOK_URL",
      ],
      // Previews: the preview-only Pulumi token, nothing that publishes or administers.
      "pr.yml:test": [],
      "pr.yml:preview-unavailable": [],
      "pr.yml:preview": ["PULUMI_PREVIEW_TOKEN"],
      // The review: the builders' client certificate and a push credential for the quarantine
      // package only (the pr-review environment), the read-only Pulumi token for the outputs.
      "pr.yml:review": [
        "BUILDKIT_CA_PEM",
        "BUILDKIT_CLIENT_CERT_PEM",
        "BUILDKIT_CLIENT_KEY_PEM",
        "PULUMI_PREVIEW_TOKEN",
        "REVIEW_REGISTRY_TOKEN",
      ],
      "pr.yml:comment": [],
      "release.yml:promote-prod": [
        "PULUMI_ACCESS_TOKEN",
        "REGISTRY_TOKEN",
        "SLACK_WEBHOOK_URL",
        "TEAMS_WEBHOOK_URL",
      ],
      "test.yml:test": [],
    });
    assert.deepEqual(job("main.yml", "deploy-dev").environment, { name: "dev" });
    assert.equal(
      (job("release.yml", "promote-prod").environment as Json | undefined)?.name,
      "production",
    );
    const withEnvironment = allJobs()
      .filter(({ job: j }) => j.environment !== undefined)
      .map(({ file, id }) => `${file}:${id}`);
    assert.deepEqual(job("pr.yml", "review").environment, { name: "pr-review" });
    assert.deepEqual(withEnvironment, [
      "main.yml:deploy-dev",
      "pr.yml:review",
      "release.yml:promote-prod",
    ]);
    // The pull request workflow never names a credential that deploys or publishes, in any job or
    // comment: no Pulumi token that writes, no registry token of the stack's package.
    const prText = workflow("pr.yml").text;
    for (const name of [
      "PULUMI_ACCESS_TOKEN",
      "REGISTRY_TOKEN",
      "FACTORY_GITHUB_TOKEN",
      "SLACK_WEBHOOK_URL",
      "TEAMS_WEBHOOK_URL",
    ]) {
      assert.ok(!prText.includes(`secrets.${name}`), `pr.yml hands over ${name}`);
    }
    assert.ok(!prText.includes("vars.AWS_ROLE_ARN"), "pr.yml assumes the deploy role");
  });

  it("keep secrets out of job-wide environments and away from npm ci", async () => {
    for (const { file, id, job: j } of allJobs()) {
      assert.deepEqual(secretValues(j.env), [], `${file}:${id}: secrets belong in step env`);
      const steps = j.steps ?? [];
      const install = steps.findIndex(isNpmInstall);
      if (install >= 0) {
        assert.deepEqual(
          secretValues(steps.slice(0, install + 1)),
          [],
          `${file}:${id}: a secret is exposed before or to npm ci`,
        );
      }
    }
  });

  it("install with npm ci --ignore-scripts in every job holding a secret or id-token: write", async () => {
    const privileged = allJobs()
      .filter(({ job: j }) => perms(j)["id-token"] === "write" || secretNames(j).length > 0)
      .map(({ file, id }) => `${file}:${id}`);
    assert.deepEqual(privileged, [
      "main.yml:deploy-dev",
      "pr.yml:preview",
      "pr.yml:review",
      "release.yml:promote-prod",
    ]);
    for (const where of privileged) {
      const [file, id] = where.split(":");
      const installs = (job(file, id).steps ?? []).filter(isNpmInstall).map((s) => s.run);
      assert.deepEqual(installs, ["npm ci --ignore-scripts"], where);
    }
    // The one install that runs dependency scripts is the test job's, which holds nothing.
    const test = job("test.yml", "test");
    assert.deepEqual(
      (test.steps ?? []).filter(isNpmInstall).map((s) => s.run),
      ["npm ci"],
    );
    assert.deepEqual(secretNames(test), []);
    assert.equal(perms(test)["id-token"], undefined);
  });

  it("use OIDC exactly where AWS is used: the deploy role on dev, the read-only role on previews", async () => {
    for (const { file, id, job: j } of allJobs()) {
      const usesAws = (j.steps ?? []).some(
        (s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@") ?? false,
      );
      assert.equal(perms(j)["id-token"] === "write", usesAws, `${file}:${id}`);
    }
    const aws = (file: string, id: string): Step => {
      const s = (job(file, id).steps ?? []).find((x) =>
        x.uses?.startsWith("aws-actions/configure-aws-credentials@"),
      );
      assert.ok(s, `${file}:${id} assumes no AWS role`);
      return s;
    };
    assert.deepEqual(aws("main.yml", "deploy-dev").with, {
      "role-to-assume": "${{ vars.AWS_ROLE_ARN }}",
      "aws-region": "${{ vars.AWS_REGION || 'eu-west-1' }}",
      "role-session-name": "image-factory-dev-${{ github.run_id }}",
    });
    assert.deepEqual(aws("pr.yml", "preview").with, {
      "role-to-assume": "${{ vars.AWS_PREVIEW_ROLE_ARN }}",
      "aws-region": "${{ vars.AWS_REGION || 'eu-west-1' }}",
      "role-session-name": "image-factory-preview-${{ matrix.stack }}-${{ github.run_id }}",
      "managed-session-policies": "arn:aws:iam::aws:policy/ReadOnlyAccess",
    });
    for (const w of loadWorkflows()) {
      assert.doesNotMatch(
        w.text,
        /AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-secret-access-key|aws-access-key-id/,
        `${w.file} carries long-lived AWS keys`,
      );
    }
  });

  it("run deploys one at a time per stack and never cancel them", async () => {
    assert.deepEqual(job("main.yml", "deploy-dev").concurrency, {
      group: "deploy-dev",
      "cancel-in-progress": false,
    });
    assert.deepEqual(job("release.yml", "promote-prod").concurrency, {
      group: "deploy-prod",
      "cancel-in-progress": false,
    });
    assert.deepEqual(job("pr.yml", "preview").concurrency, {
      group: "preview-${{ matrix.stack }}-pr-${{ github.event.pull_request.number }}",
      "cancel-in-progress": true,
    });
    assert.deepEqual(workflow("pr.yml").doc.concurrency, {
      group: "pr-${{ github.event.pull_request.number }}",
      "cancel-in-progress": true,
    });
  });

  it("pin every action by commit sha with its release in a comment, from the verified table", async () => {
    const lines = usesLines();
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const { where, line } of lines) {
      const ref = line.replace(/^(-\s*)?uses:\s*/, "");
      if (ref.startsWith("./")) continue;
      const action = ref.slice(0, ref.indexOf("@"));
      const pin = PINS[action];
      if (pin === undefined) {
        problems.push(`${where}: ${action} is not in the verified pin table`);
        continue;
      }
      seen.add(action);
      const expected = `${action}@${pin.sha} # ${pin.version}`;
      if (ref !== expected) problems.push(`${where}: "${ref}", expected "${expected}"`);
    }
    assert.deepEqual(problems, []);
    assert.deepEqual([...seen].sort(), Object.keys(PINS).sort(), "every pinned action is used");
    // The docs' table shows the same pins.
    const doc = fs.readFileSync(path.join(REPO, "docs/delivery.md"), "utf8");
    for (const [action, { sha, version }] of Object.entries(PINS)) {
      assert.ok(
        doc.includes(`| ${action} | \`${sha}\` (${version}) |`),
        `docs/delivery.md does not list ${action} ${version} ${sha}`,
      );
    }
  });

  it("use only local actions by path, and reusable workflows of this repository", async () => {
    const local = usesLines()
      .map(({ line }) => line.replace(/^(-\s*)?uses:\s*/, ""))
      .filter((r) => r.startsWith("./"))
      .sort();
    assert.deepEqual(
      [...new Set(local)],
      [
        "./.github/actions/factory-tools",
        "./.github/actions/remote-builders",
        "./.github/workflows/test.yml",
      ],
    );
  });

  it("install the Pulumi CLI pinned in scripts/versions.env", async () => {
    const env = fs.readFileSync(path.join(REPO, "scripts/versions.env"), "utf8");
    assert.match(env, /^PULUMI_VERSION=v3\.259\.0$/m);
    const steps = allJobs().flatMap(({ file, id, job: j }) =>
      (j.steps ?? [])
        .filter((s) => s.uses?.startsWith("pulumi/actions@"))
        .map((s) => `${file}:${id}:${String(s.with?.["pulumi-version"])}`),
    );
    assert.deepEqual(steps, [
      "main.yml:deploy-dev:3.259.0",
      "main.yml:deploy-dev:3.259.0",
      "pr.yml:preview:3.259.0",
      "pr.yml:preview:3.259.0",
      "pr.yml:review:3.259.0",
      "release.yml:promote-prod:3.259.0",
      "release.yml:promote-prod:3.259.0",
    ]);
  });

  it("keep stack outputs out of the logs of every pulumi up and preview", async () => {
    const runs = allJobs().flatMap(({ file, id, job: j }) =>
      (j.steps ?? [])
        .filter((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command !== undefined)
        .map(
          (s) => `${file}:${id}:${String(s.with?.command)}:${String(s.with?.["suppress-outputs"])}`,
        ),
    );
    assert.deepEqual(runs, [
      "main.yml:deploy-dev:up:true",
      "pr.yml:preview:preview:true",
      "release.yml:promote-prod:up:true",
    ]);
  });

  it("deploy dev from main and prod only from the production environment, by promotion", async () => {
    const prod = job("release.yml", "promote-prod");
    const up = stepNamed(prod, "pulumi up (prod, promotion by digest)");
    assert.equal(up.uses, `pulumi/actions@${PINS["pulumi/actions"].sha}`);
    assert.equal(up.with?.command, "up");
    assert.equal(up.with?.["stack-name"], "${{ env.STACK }}");
    assert.equal(prod.env?.STACK, "${{ vars.PULUMI_ORG }}/image-factory/prod");
    assert.deepEqual(up.env, { PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}" });
    // Promotion builds nothing: no builders, no AWS, no scanners on the prod job.
    assert.ok(!(prod.steps ?? []).some((s) => s.uses?.startsWith("./.github/actions/")));

    const dev = job("main.yml", "deploy-dev");
    const devUp = stepNamed(dev, "pulumi up (dev)");
    assert.equal(devUp.with?.command, "up");
    assert.equal(dev.env?.STACK, "${{ vars.PULUMI_ORG }}/image-factory/dev");
    assert.deepEqual(
      devUp.env,
      pulumiStepEnv("PULUMI_ACCESS_TOKEN", "${{ secrets.FACTORY_GITHUB_TOKEN }}"),
    );
    assert.deepEqual(
      stepNamed(dev, "Remote BuildKit builders (mTLS)").with,
      builderInputs("PULUMI_ACCESS_TOKEN"),
    );
  });

  it("release only a tag whose commit is on main, checked before any secret is used", async () => {
    const prod = job("release.yml", "promote-prod");
    const steps = prod.steps ?? [];
    const checkout = indexOfStep(
      prod,
      (s) => s.uses?.startsWith("actions/checkout@") ?? false,
      "checkout",
    );
    assert.deepEqual(steps[checkout].with, { "persist-credentials": false, "fetch-depth": 0 });
    const check = indexOfStep(prod, (s) => s.name === "The tagged commit is on main", "ancestry");
    assert.ok(checkout < check);
    const run = String(steps[check].run);
    assert.ok(run.includes('git merge-base --is-ancestor "$GITHUB_SHA" origin/main'), run);
    assert.ok(run.includes("set -euo pipefail"));
    assert.ok(run.includes("exit 1"));
    assert.equal(steps[check].if, undefined, "the check always runs");
    const firstSecret = steps.findIndex((s) => secretNames(s).length > 0);
    assert.ok(check < firstSecret, "the ancestry check runs before the first step with a secret");
  });

  it("preview dev and prod with the preview-only credentials and no PR write access", async () => {
    const preview = job("pr.yml", "preview");
    assert.deepEqual(preview.strategy?.matrix?.stack, ["dev", "prod"]);
    assert.equal(preview.needs, "test");
    assert.deepEqual(preview.env, {
      STACK: "${{ vars.PULUMI_ORG }}/image-factory/${{ matrix.stack }}",
    });
    const step = stepNamed(preview, "pulumi preview");
    assert.equal(step.uses, `pulumi/actions@${PINS["pulumi/actions"].sha}`);
    assert.deepEqual(step.with, {
      command: "preview",
      "stack-name": "${{ env.STACK }}",
      "pulumi-version": "3.259.0",
      diff: true,
      "suppress-outputs": true,
      "comment-on-pr": false,
      "comment-on-summary": true,
    });
    assert.deepEqual(step.env, pulumiStepEnv("PULUMI_PREVIEW_TOKEN", "${{ github.token }}"));
    assert.deepEqual(stepNamed(preview, "Registry token (the job's read-only GITHUB_TOKEN)").env, {
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_PREVIEW_TOKEN }}",
      REGISTRY_TOKEN: "${{ github.token }}",
    });
    // No BuildKit client key, no builders: previews cannot reach the build hosts.
    assert.ok(!(preview.steps ?? []).some((s) => s.uses === "./.github/actions/remote-builders"));
  });

  it("leave GITHUB_REF to the pull request (the program scopes its cache to pr-<n> from it)", async () => {
    // GitHub sets GITHUB_REF=refs/pull/<n>/merge for pull_request runs; nothing may replace it.
    for (const id of ["preview", "review"])
      assert.ok(!JSON.stringify(job("pr.yml", id)).includes("GITHUB_REF"), `${id} sets GITHUB_REF`);
    for (const stack of ["dev", "prod"]) {
      const config = fs.readFileSync(path.join(REPO, `Pulumi.${stack}.yaml`), "utf8");
      assert.doesNotMatch(config, /image-factory:gitRef/, `Pulumi.${stack}.yaml pins gitRef`);
    }
  });

  it("hand each stack's preview output to the review job as an artifact", async () => {
    const preview = job("pr.yml", "preview");
    assert.ok(
      !(preview.steps ?? []).some((s) => /npm run review/.test(s.run ?? "")),
      "the preview job reviews (it has no builder and no push credential)",
    );
    const keep = stepNamed(preview, "Keep the preview output for the review");
    assert.deepEqual(keep.env, {
      PREVIEW_OUTCOME: "${{ steps.preview.outcome }}",
      PREVIEW_OUTPUT: "${{ steps.preview.outputs.output }}",
    });
    assert.match(String(keep.run), /printf '%s\\n' "\$PREVIEW_OUTPUT"/);
    assert.match(String(keep.run), /\} >preview\.txt\n$/);
    const upload = artifactUpload(preview, "Hand the preview to the review job", "preview");
    const steps = preview.steps ?? [];
    assert.ok(steps.indexOf(stepNamed(preview, "pulumi preview")) < steps.indexOf(keep));
    assert.ok(steps.indexOf(keep) < steps.indexOf(upload));
  });

  it("review each stack with a real build: the pr-review environment's builder key and quarantine credential, nothing that deploys", async () => {
    const review = job("pr.yml", "review");
    // Least privilege: no OIDC (no AWS role), no packages on GITHUB_TOKEN (it would reach the
    // stack's own package), no Pulumi token that writes.
    assert.deepEqual(perms(review), { contents: "read" });
    const steps = review.steps ?? [];
    assert.equal(review.needs, "preview");
    assert.deepEqual(
      [review.strategy?.matrix?.stack, review.concurrency],
      [
        ["dev", "prod"],
        {
          group: "review-${{ matrix.stack }}-pr-${{ github.event.pull_request.number }}",
          "cancel-in-progress": true,
        },
      ],
    );
    assert.ok(!steps.some((s) => s.uses?.startsWith("aws-actions/")), "the review assumes a role");
    assert.ok(!JSON.stringify(review).includes("secrets.PULUMI_ACCESS_TOKEN"));
    assert.ok(!JSON.stringify(review).includes("github.token"), "the review uses GITHUB_TOKEN");
    // The stack's own builders, the stack output read with the read-only token.
    const builders = stepNamed(review, "Remote BuildKit builders (mTLS)");
    assert.equal(builders.uses, "./.github/actions/remote-builders");
    assert.deepEqual(builders.with, builderInputs("PULUMI_PREVIEW_TOKEN"));
    const download = stepNamed(review, "The preview the preview job made");
    assert.equal(
      download.uses,
      `actions/download-artifact@${PINS["actions/download-artifact"].sha}`,
    );
    assert.deepEqual(download.with, { name: "preview-${{ matrix.stack }}", path: "preview" });
    const run = stepNamed(review, "Review (npm run review, with a build)");
    assert.deepEqual(run.env, {
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_PREVIEW_TOKEN }}",
      PULUMI_ORG: "${{ vars.PULUMI_ORG }}",
      REVIEW_STACK: "${{ matrix.stack }}",
      IMAGE_FACTORY_REGISTRY_USERNAME: "${{ vars.REVIEW_REGISTRY_USERNAME }}",
      IMAGE_FACTORY_REGISTRY_TOKEN: "${{ secrets.REVIEW_REGISTRY_TOKEN }}",
    });
    assert.ok(
      String(run.run).includes(
        'npm run review -- --stack "$REVIEW_STACK" --backend service --build "${preview[@]}" --out review.md',
      ),
      String(run.run),
    );
    assert.doesNotMatch(String(run.run), /--no-build|\$\{\{/);
    const upload = artifactUpload(review, "Hand the review to the comment job", "review");
    const cleanup = stepNamed(review, "Remove the client certificate");
    assert.equal(cleanup.if, "always()");
    const order = [builders, download, run, upload, cleanup].map((s) => steps.indexOf(s));
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      "builders, preview, review, upload, cleanup",
    );
  });

  it("post the reviews from a job that can comment and nothing else", async () => {
    const comment = job("pr.yml", "comment");
    assert.equal(comment.needs, "review");
    assert.equal(comment.if, "${{ !cancelled() && needs.review.result != 'skipped' }}");
    assert.deepEqual(perms(comment), { "pull-requests": "write" });
    assert.deepEqual(secretNames(comment), []);
    assert.equal(comment.environment, undefined);
    const steps = comment.steps ?? [];
    assert.ok(!steps.some((s) => s.uses?.startsWith("actions/checkout@")), "no checkout");
    assert.deepEqual(
      steps.map((s) => s.uses ?? "run"),
      [`actions/download-artifact@${PINS["actions/download-artifact"].sha}`, "run"],
    );
    assert.deepEqual(steps[0].with, { pattern: "review-*", path: "reviews" });
    const post = stepNamed(comment, "Post or edit one comment per stack");
    assert.deepEqual(post.env, {
      GH_TOKEN: "${{ github.token }}",
      REPO: "${{ github.repository }}",
      PR_NUMBER: "${{ github.event.pull_request.number }}",
    });
    const run = String(post.run);
    for (const piece of [
      'marker="<!-- image-factory-review:${stack} -->"',
      'gh api --method PATCH "repos/$REPO/issues/comments/$id"',
      'gh api --method POST "repos/$REPO/issues/$PR_NUMBER/comments"',
      "jq -n --rawfile body",
      'select(.user.login == \\"github-actions[bot]\\"',
    ]) {
      assert.ok(run.includes(piece), `the comment script lacks ${piece}`);
    }
    assert.doesNotMatch(run, /\$\{\{/, "no expression is interpolated into the script");
  });

  it("keep fork and Dependabot pull requests to the tests, and say so", async () => {
    const pr = workflow("pr.yml").doc.jobs;
    assert.equal(pr.test.uses, "./.github/workflows/test.yml");
    assert.equal(pr.test.if, undefined, "the tests run for every pull request, forks included");
    assert.equal(
      pr.preview.if,
      "github.event.pull_request.head.repo.full_name == github.repository && github.actor != 'dependabot[bot]'",
    );
    // The review job holds the pr-review environment's secrets: same-repository branches only.
    assert.equal(
      pr.review.if,
      "${{ !cancelled() && needs.preview.result != 'skipped' && github.event.pull_request.head.repo.full_name == github.repository && github.actor != 'dependabot[bot]' }}",
    );
    const notice = pr["preview-unavailable"];
    assert.equal(
      notice.if,
      "github.event.pull_request.head.repo.full_name != github.repository || github.actor == 'dependabot[bot]'",
    );
    assert.equal(notice.name, "preview (not available for forks)");
    assert.deepEqual(notice.permissions, {});
    const says = String(notice.steps?.[0]?.run);
    assert.ok(
      says.includes(
        "pulumi preview and the review comment are not available for pull requests from forks or Dependabot",
      ),
    );
    assert.ok(says.includes("::notice::"));
    assert.ok(says.includes("GITHUB_STEP_SUMMARY"));
    const test = workflow("test.yml");
    assert.doesNotMatch(test.text, /secrets\./, "test.yml must work without secrets");
  });

  it("install the scanners and cosign with the local path's scripts, cached by scripts/versions.env", async () => {
    for (const [file, id] of [
      ["main.yml", "deploy-dev"],
      ["pr.yml", "preview"],
      ["pr.yml", "review"],
    ] as const) {
      const j = job(file, id);
      const tools = indexOfStep(
        j,
        (s) => s.uses === "./.github/actions/factory-tools",
        `${file}:${id} factory-tools`,
      );
      const npm = indexOfStep(j, isNpmInstall, "npm ci");
      const firstPulumi = indexOfStep(
        j,
        (s) => s.uses?.startsWith("pulumi/actions@") ?? false,
        "pulumi",
      );
      assert.ok(
        npm < tools && tools < firstPulumi,
        `${file}:${id}: tools after npm ci, before Pulumi`,
      );
      assert.deepEqual(secretNames((j.steps ?? [])[tools]), [], "no secret reaches the installs");
    }
    const action = compositeAction("factory-tools");
    assert.equal(action.runs.using, "composite");
    const [cache, go, scanners, cosign, pathStep] = action.runs.steps;
    assert.equal(action.runs.steps.length, 5);
    assert.equal(cache.uses, `actions/cache@${PINS["actions/cache"].sha}`);
    assert.deepEqual(cache.with, {
      path: "~/.cache/image-factory/scanners\n~/.cache/image-factory/go-tools/cosign-*\n",
      key: "image-factory-ci-tools-${{ runner.os }}-${{ runner.arch }}-${{ hashFiles('scripts/versions.env') }}",
    });
    assert.equal(go.uses, `actions/setup-go@${PINS["actions/setup-go"].sha}`);
    assert.deepEqual(go.with, { "go-version": "1.26.8", cache: false });
    assert.equal(scanners.run, "bash scripts/install-scanners.sh");
    assert.equal(cosign.run, "bash scripts/install-go-tools.sh cosign");
    assert.equal(pathStep.run, 'echo "$HOME/.cache/image-factory/bin" >>"$GITHUB_PATH"');
    // The scripts the local path runs: the four scanners by default, cosign by name.
    const scannersScript = fs.readFileSync(path.join(REPO, "scripts/install-scanners.sh"), "utf8");
    assert.ok(scannersScript.includes("tools=(syft trivy dive hadolint)"));
    const goTools = fs.readFileSync(path.join(REPO, "scripts/install-go-tools.sh"), "utf8");
    assert.ok(goTools.includes('build_tool "cosign-$COSIGN_VERSION" cosign cosign'));
    const versions = fs.readFileSync(path.join(REPO, "scripts/versions.env"), "utf8");
    assert.match(versions, /^COSIGN_VERSION=v\d+\.\d+\.\d+$/m);
    const bootstrap = fs.readFileSync(path.join(REPO, "scripts/bootstrap.sh"), "utf8");
    assert.match(bootstrap, /^step install-scanners\.sh$/m);
    assert.match(bootstrap, /^step install-go-tools\.sh$/m);
  });

  it("notify on every dev and prod deploy outcome, from a secret webhook", async () => {
    for (const [file, jobId, stack] of [
      ["main.yml", "deploy-dev", "dev"],
      ["release.yml", "promote-prod", "prod"],
    ] as const) {
      const notify = (job(file, jobId).steps ?? []).find((s) => s.run === "npm run notify");
      assert.ok(notify, `${file} has a notify step`);
      assert.equal(notify.if, "always()");
      assert.equal(notify["continue-on-error"], true);
      assert.equal(notify.env?.SLACK_WEBHOOK_URL, "${{ secrets.SLACK_WEBHOOK_URL }}");
      assert.equal(notify.env?.TEAMS_WEBHOOK_URL, "${{ secrets.TEAMS_WEBHOOK_URL }}");
      assert.equal(notify.env?.NOTIFY_GATES, "${{ steps.up.outputs.gateResults }}");
      assert.equal(notify.env?.NOTIFY_STACK, stack);
      assert.equal(notify.env?.NOTIFY_STATUS, "${{ job.status }}");
      assert.equal(notify.env?.NOTIFY_DIGEST, "${{ steps.up.outputs.digest }}");
      assert.equal(notify.env?.NOTIFY_TAGS, "${{ steps.up.outputs.tags }}");
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    assert.match(pkg.scripts.notify, /scripts\/notify\.ts/);
  });
});

describe("GHCR retention (.github/workflows/ghcr-retention.yml)", () => {
  it("prunes the package's old untagged versions and every old version of its quarantine package, as a dry run when asked", async () => {
    const prune = job("ghcr-retention.yml", "prune");
    assert.deepEqual(prune.env, {
      GH_TOKEN: "${{ github.token }}",
      OWNER: "${{ github.repository_owner }}",
      PACKAGE: "${{ vars.GHCR_PACKAGE_NAME }}",
      RETENTION_DAYS: "${{ vars.GHCR_UNTAGGED_RETENTION_DAYS || '30' }}",
      // The documented rule for `<package>-review` (docs/delivery.md): 14 days, tagged or not.
      REVIEW_RETENTION_DAYS: "14",
      DRY_RUN: "${{ github.event_name == 'workflow_dispatch' && inputs.dry-run }}",
    });
    const dispatch = workflow("ghcr-retention.yml").doc.on.workflow_dispatch as {
      inputs: Record<string, Json>;
    };
    assert.equal(dispatch.inputs["dry-run"].default, true);
    const run = String(prune.steps?.[0]?.run);
    const rules = run
      .split("\n")
      .filter((l) => /^prune /.test(l))
      .map((l) => l.trim());
    assert.deepEqual(rules, [
      'prune "$PACKAGE" "$RETENTION_DAYS" untagged',
      'prune "$PACKAGE-review" "$REVIEW_RETENTION_DAYS" all',
    ]);
    // The dry run decides before every deletion; deletions name the version they remove.
    assert.match(
      run,
      /if \[\[ "\$DRY_RUN" == "true" \]\]; then\n\s+echo "would delete version \$id of \$package"\n\s+else\n\s+gh api --method DELETE "\$base\/versions\/\$id"/,
    );
    const docs = fs.readFileSync(path.join(REPO, "docs/delivery.md"), "utf8");
    assert.doesNotMatch(docs, /does not apply it yet/);
    assert.match(docs, /every version of `<package>-review` older than 14 days is deleted/);
  });
});

describe("Dependabot (.github/dependabot.yml)", () => {
  interface Update {
    "package-ecosystem": string;
    directory?: string;
    directories?: string[];
    schedule?: { interval?: string };
    cooldown?: { "default-days"?: number };
  }
  const config = (): { version: number; updates: Update[] } =>
    parse(fs.readFileSync(path.join(REPO, ".github/dependabot.yml"), "utf8")) as {
      version: number;
      updates: Update[];
    };

  it("watches actions, both npm projects and every Go module under tools/", async () => {
    const c = config();
    assert.equal(c.version, 2);
    const watched = c.updates
      .flatMap((u) =>
        (u.directories ?? [u.directory ?? "?"]).map((d) => `${u["package-ecosystem"]} ${d}`),
      )
      .sort();
    assert.deepEqual(watched, [
      "github-actions /",
      "github-actions /.github/actions/*",
      "gomod /tools/buildkit",
      "gomod /tools/docker-build",
      "gomod /tools/pulumi",
      "gomod /tools/pulumi-language-nodejs",
      "gomod /tools/trivy-db",
      "npm /",
      "npm /app",
    ]);
    for (const u of c.updates) {
      assert.equal(u.schedule?.interval, "weekly");
      assert.equal(u.cooldown?.["default-days"], 7);
    }
  });

  it("misses no Go module directly under tools/", async () => {
    const modules = fs
      .readdirSync(path.join(REPO, "tools"))
      .filter((d) => fs.existsSync(path.join(REPO, "tools", d, "go.mod")))
      .map((d) => `/tools/${d}`);
    const gomod = config()
      .updates.filter((u) => u["package-ecosystem"] === "gomod")
      .map((u) => u.directory);
    for (const m of modules) assert.ok(gomod.includes(m), `dependabot.yml does not watch ${m}`);
  });
});

describe("delivery policies (docs/delivery.md)", () => {
  it("trust the deploy role from the dev environment only and the preview role from pull requests only", async () => {
    const policies = trustPolicies();
    assert.deepEqual(
      policies.map((p) => p.subject),
      ["repo:acme/shop-api:environment:dev", "repo:acme/shop-api:pull_request"],
    );
    for (const { statement } of policies) {
      assert.equal(statement.Effect, "Allow");
      assert.equal(
        statement.Principal.Federated,
        "arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com",
      );
      assert.deepEqual(Object.keys(statement.Condition), ["StringEquals"]);
      assert.equal(
        statement.Condition.StringEquals["token.actions.githubusercontent.com:aud"],
        "sts.amazonaws.com",
      );
    }
  });

  it("let the preview role read and never write", async () => {
    const permissions = deliveryJsonBlocks().find((b) =>
      ((b.Statement as Array<{ Sid?: string }> | undefined) ?? []).some(
        (s) => s.Sid === "DescribeWhatThePreviewReads",
      ),
    );
    assert.ok(permissions, "docs/delivery.md has the preview role's permission policy");
    const statements = permissions.Statement as Array<{ Effect: string; Action: string[] }>;
    const actions = statements.flatMap((s) => {
      assert.equal(s.Effect, "Allow");
      return s.Action;
    });
    const writes = actions.filter(
      (a) =>
        !/^(ec2:Describe[A-Za-z]+|iam:(Get|List)[A-Za-z]+|kms:(DescribeKey|GetPublicKey)|ssm:GetParameters?|s3:(Get[A-Za-z]+|ListBucket))$/.test(
          a,
        ),
    );
    assert.deepEqual(writes, []);
    assert.ok(!actions.some((a) => a.includes("*")), "no wildcard actions");
  });

  it("restrict v* tags to the release team with a tag ruleset", async () => {
    const ruleset = deliveryJsonBlocks().find((b) => b.target === "tag");
    assert.ok(ruleset, "docs/delivery.md has the tag ruleset");
    assert.equal(ruleset.enforcement, "active");
    assert.deepEqual(ruleset.conditions, {
      ref_name: { include: ["refs/tags/v*"], exclude: [] },
    });
    assert.deepEqual(
      (ruleset.rules as Array<{ type: string }>).map((r) => r.type),
      ["creation", "update", "deletion", "non_fast_forward"],
    );
    const bypass = ruleset.bypass_actors as Array<Json>;
    assert.equal(bypass.length, 1);
    assert.equal(bypass[0].actor_type, "Team");
    assert.equal(bypass[0].bypass_mode, "always");
  });

  it("name every credential in the trust model table", async () => {
    const doc = fs.readFileSync(path.join(REPO, "docs/delivery.md"), "utf8");
    const section = doc.slice(
      doc.indexOf("## Trust model"),
      doc.indexOf("### Setting the credentials"),
    );
    for (const credential of [
      "`PULUMI_PREVIEW_TOKEN` (repository secret)",
      "`PULUMI_ACCESS_TOKEN` (`dev` environment)",
      "`PULUMI_ACCESS_TOKEN` (`production` environment)",
      "`REGISTRY_TOKEN`",
      "`FACTORY_GITHUB_TOKEN` (`dev` environment)",
      "AWS deploy role",
      "AWS preview role",
      "AWS release role",
      "BuildKit CA, client certificate, client key",
      "Signing key",
      "`SLACK_WEBHOOK_URL`",
      "`TEAMS_WEBHOOK_URL`",
      "`REVIEW_REGISTRY_TOKEN` (`pr-review` environment)",
    ]) {
      assert.ok(section.includes(`| ${credential}`), `trust model lacks ${credential}`);
    }
    // And no workflow hands over a secret the trust model does not explain.
    const named = [...new Set(allJobs().flatMap(({ job: j }) => secretNames(j)))];
    assert.deepEqual(
      named.filter((name) => !section.includes(`\`${name}\``)),
      [],
    );
  });
});
