// The delivery workflows: checked by the real actionlint (with shellcheck for every `run:` script)
// and parsed to assert the properties the delivery design promises — triggers, least-privilege
// permissions per job, concurrency, pinned actions, the production environment, and that pull
// requests from forks never reach a job that needs secrets.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { builderCommand, certFiles } from "../../components/buildHosts";

const REPO = path.resolve(__dirname, "../..");
const WORKFLOWS = path.join(REPO, ".github/workflows");
const ACTIONS = path.join(REPO, ".github/actions");

type Json = Record<string, unknown>;
interface Step extends Json {
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

function pinnedVersion(): string {
  const env = fs.readFileSync(path.join(REPO, "scripts/versions.env"), "utf8");
  const m = /^ACTIONLINT_VERSION=(\S+)$/m.exec(env);
  assert.ok(m, "ACTIONLINT_VERSION missing from scripts/versions.env");
  return m[1];
}

function findTool(name: string, hint: string): string {
  const cache = process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache/image-factory");
  const candidates = [
    path.join(cache, "bin", name),
    ...(process.env.PATH ?? "").split(path.delimiter).map((d) => path.join(d, name)),
  ];
  const found = candidates.find((c) => c !== name && fs.existsSync(c));
  if (found === undefined) {
    assert.fail(`${name} is not installed (looked in ${cache}/bin and PATH): ${hint}`);
  }
  return found;
}

function actionlint(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const bin = findTool(
    "actionlint",
    "run scripts/install-actionlint.sh (scripts/bootstrap.sh does)",
  );
  const shellcheck = findTool(
    "shellcheck",
    "run scripts/install-apt.sh (shellcheck is pinned in scripts/apt-packages.txt)",
  );
  const r = spawnSync(bin, [`-shellcheck=${shellcheck}`, "-pyflakes=", ...args], {
    cwd: REPO,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
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

function allJobs(): Array<{ file: string; id: string; job: Job }> {
  return loadWorkflows().flatMap((w) =>
    Object.entries(w.doc.jobs).map(([id, job]) => ({ file: w.file, id, job })),
  );
}

/** Secret values a text hands over; `secrets.X != ''` only tells whether one is set. */
function secretValues(text: string): string[] {
  return [...text.matchAll(/secrets\.([A-Za-z_]+)\b(?!\s*!=\s*'')/g)].map((m) => m[1]);
}

/** The stack a pulumi/actions step targets, following `${{ env.STACK }}` to the job's env. */
function stackOf(job: Job, step: Step): string {
  const name = String(step.with?.["stack-name"]);
  return name === "${{ env.STACK }}" ? String(job.env?.STACK) : name;
}

function perms(job: Job): Record<string, string> {
  assert.ok(
    typeof job.permissions === "object" && job.permissions !== null,
    "permissions must be a map",
  );
  return job.permissions as Record<string, string>;
}

/**
 * The pin rule: a local action (`./…`), or `owner/repo[/path]@<40-hex sha>` with the release it
 * stands for in a `# vX.Y.Z` comment, or an exact `@vX.Y.Z` tag when the sha could not be
 * verified. Branches (`@main`) and moving major/minor tags (`@v4`, `@v4.2`) are refused.
 */
export function pinProblem(line: string): string | undefined {
  const m = /uses:\s*(\S+)(.*)$/.exec(line);
  if (!m) return "no uses: value";
  const [, ref, rest] = m;
  if (ref.startsWith("./")) return undefined;
  if (ref.startsWith("docker://"))
    return /@sha256:[0-9a-f]{64}$/.test(ref)
      ? undefined
      : `${ref}: docker image not pinned by digest`;
  const at = ref.lastIndexOf("@");
  if (at < 0) return `${ref}: no version`;
  const version = ref.slice(at + 1);
  if (/^[0-9a-f]{40}$/.test(version)) {
    return /#\s*v\d+\.\d+\.\d+\b/.test(rest)
      ? undefined
      : `${ref}: sha without a "# vX.Y.Z" comment naming its release`;
  }
  if (/^v\d+\.\d+\.\d+$/.test(version)) return undefined;
  return `${ref}: "${version}" is a moving ref (branch or major/minor tag), pin a sha or an exact vX.Y.Z`;
}

function usesLines(): Array<{ where: string; line: string }> {
  const files = [
    ...fs.readdirSync(WORKFLOWS).map((f) => path.join(WORKFLOWS, f)),
    ...(fs.existsSync(ACTIONS)
      ? fs.readdirSync(ACTIONS).map((d) => path.join(ACTIONS, d, "action.yml"))
      : []),
  ];
  return files.flatMap((f) =>
    fs
      .readFileSync(f, "utf8")
      .split("\n")
      .map((line, i) => ({ where: `${path.relative(REPO, f)}:${i + 1}`, line }))
      .filter(({ line }) => /^\s*(-\s*)?uses:/.test(line)),
  );
}

describe("delivery workflows (.github/workflows)", () => {
  it("pass the real actionlint (with shellcheck on every run: script)", async () => {
    const version = actionlint(["-version"]);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(
      version.stdout.split("\n")[0],
      pinnedVersion().replace(/^v/, ""),
      "actionlint is not the pinned version",
    );
    const r = actionlint(["-format", "{{json .}}"]);
    const errors = JSON.parse(r.stdout === "" ? "[]" : r.stdout) as Array<{
      filepath: string;
      line: number;
      message: string;
    }>;
    assert.deepEqual(
      errors.map((e) => `${e.filepath}:${e.line}: ${e.message}`),
      [],
      "actionlint reported problems",
    );
    assert.equal(r.status, 0, r.stderr);
  });

  it("actionlint really checks: a broken workflow is reported", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-actionlint-"));
    try {
      const bad = path.join(dir, "bad.yml");
      fs.writeFileSync(
        bad,
        [
          "on: push",
          "jobs:",
          "  x:",
          "    runs-on: ubuntu-24.04",
          "    steps:",
          "      - run: echo ${{ github.nope.field }} $UNQUOTED",
          "",
        ].join("\n"),
      );
      const r = actionlint(["-format", "{{json .}}", bad]);
      assert.notEqual(r.status, 0);
      const messages = (JSON.parse(r.stdout) as Array<{ message: string }>)
        .map((e) => e.message)
        .join("\n");
      assert.match(messages, /property "nope" is not defined/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("have the expected triggers and never run pull_request_target", async () => {
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
      assert.ok(
        !("pull_request_target" in w.doc.on),
        `${w.file} must not use pull_request_target (it hands secrets to fork code)`,
      );
      assert.ok(
        !("workflow_run" in w.doc.on),
        `${w.file}: workflow_run would run with secrets after fork PRs`,
      );
    }
  });

  it("grant nothing by default and explicit least-privilege permissions per job", async () => {
    for (const w of loadWorkflows()) {
      const top = w.doc.permissions;
      assert.ok(
        top !== undefined &&
          typeof top === "object" &&
          top !== null &&
          Object.entries(top).every(([k, v]) => k === "contents" && v === "read"),
        `${w.file}: top-level permissions must be {} or { contents: read }, got ${JSON.stringify(top)}`,
      );
      assert.doesNotMatch(w.text, /write-all|read-all/, `${w.file} uses a blanket permission`);
    }
    for (const { file, id, job } of allJobs()) {
      const p = perms(job);
      for (const [scope, level] of Object.entries(p)) {
        assert.ok(["read", "write", "none"].includes(level), `${file}:${id} ${scope}: ${level}`);
      }
    }
    const withWrite = (scope: string): string[] =>
      allJobs()
        .filter(({ job }) => perms(job)[scope] === "write")
        .map(({ file, id }) => `${file}:${id}`)
        .sort();
    // Pushing images/tags (dev build, prod promotion) and deleting old versions (retention) only.
    assert.deepEqual(withWrite("packages"), [
      "ghcr-retention.yml:prune",
      "main.yml:deploy-dev",
      "release.yml:promote-prod",
    ]);
    assert.deepEqual(withWrite("pull-requests"), ["pr.yml:preview"]);
    assert.deepEqual(withWrite("contents"), [], "no job writes the repository");
  });

  it("use OIDC to AWS exactly where AWS is used, and no long-lived AWS keys", async () => {
    for (const { file, id, job } of allJobs()) {
      const usesAws = (job.steps ?? []).some(
        (s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@") ?? false,
      );
      assert.equal(
        perms(job)["id-token"] === "write",
        usesAws,
        `${file}:${id}: id-token: write iff it assumes an AWS role`,
      );
      for (const s of job.steps ?? []) {
        if (s.uses?.startsWith("aws-actions/configure-aws-credentials@")) {
          assert.match(String(s.with?.["role-to-assume"]), /vars\.AWS_ROLE_ARN/);
          assert.equal(s.with?.["aws-access-key-id"], undefined);
        }
      }
    }
    for (const w of loadWorkflows()) {
      assert.doesNotMatch(
        w.text,
        /AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-secret-access-key/,
        `${w.file} carries long-lived AWS keys`,
      );
    }
  });

  it("keep secrets out of job-wide environments (dependency install scripts never see them)", async () => {
    for (const { file, id, job } of allJobs()) {
      assert.deepEqual(
        secretValues(JSON.stringify(job.env ?? {})),
        [],
        `${file}:${id}: secrets belong in step env`,
      );
      const steps = job.steps ?? [];
      const install = steps.findIndex((s) => typeof s.run === "string" && /\bnpm ci\b/.test(s.run));
      if (install >= 0) {
        assert.deepEqual(
          secretValues(JSON.stringify(steps.slice(0, install + 1))),
          [],
          `${file}:${id}: a secret is exposed before or to npm ci`,
        );
      }
    }
  });

  it("run deploys one at a time per stack and never cancel them", async () => {
    const dev = workflow("main.yml").doc.jobs["deploy-dev"];
    assert.deepEqual(dev.concurrency, { group: "deploy-dev", "cancel-in-progress": false });
    const prod = workflow("release.yml").doc.jobs["promote-prod"];
    assert.deepEqual(prod.concurrency, { group: "deploy-prod", "cancel-in-progress": false });
    const preview = workflow("pr.yml").doc.jobs.preview;
    assert.match(String(preview.concurrency?.group), /matrix\.stack/);
    assert.match(String(preview.concurrency?.group), /pull_request\.number/);
    assert.equal(preview.concurrency?.["cancel-in-progress"], true);
  });

  it("pin every action (sha with a version comment, or an exact vX.Y.Z tag)", async () => {
    const lines = usesLines();
    assert.ok(lines.length >= 10, `only ${lines.length} uses: lines found`);
    const problems = lines
      .map(({ where, line }) => [where, pinProblem(line)])
      .filter(([, p]) => p !== undefined);
    assert.deepEqual(problems, []);
    // The rule itself.
    assert.equal(
      pinProblem("uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"),
      undefined,
    );
    assert.equal(pinProblem("uses: pulumi/actions@v6.6.1"), undefined);
    assert.equal(pinProblem("uses: ./.github/actions/remote-builders"), undefined);
    for (const bad of [
      "uses: actions/checkout@v4",
      "uses: actions/checkout@v4.2",
      "uses: actions/checkout@main",
      "uses: actions/checkout@master",
      "uses: actions/checkout",
      "uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
      "uses: docker://alpine:3",
    ]) {
      assert.notEqual(pinProblem(bad), undefined, bad);
    }
  });

  it("install the Pulumi CLI pinned in scripts/versions.env", async () => {
    const env = fs.readFileSync(path.join(REPO, "scripts/versions.env"), "utf8");
    const pinned = /^PULUMI_VERSION=v?(\S+)$/m.exec(env)?.[1];
    assert.ok(pinned, "PULUMI_VERSION missing from scripts/versions.env");
    const steps = allJobs().flatMap(({ file, id, job }) =>
      (job.steps ?? [])
        .filter((s) => s.uses?.startsWith("pulumi/actions@"))
        .map((s) => ({ where: `${file}:${id}`, version: String(s.with?.["pulumi-version"]) })),
    );
    assert.ok(
      steps.length >= 6,
      `expected pulumi/actions steps in pr, main and release, found ${steps.length}`,
    );
    for (const { where, version } of steps)
      assert.equal(version, pinned, `${where} installs Pulumi ${version}`);
  });

  it("deploy prod only from the production environment, by promotion", async () => {
    const jobsInProduction = allJobs().filter(({ job }) => {
      const env = job.environment;
      return (
        env === "production" ||
        (typeof env === "object" && env !== null && (env as Json).name === "production")
      );
    });
    assert.deepEqual(
      jobsInProduction.map(({ file, id }) => `${file}:${id}`),
      ["release.yml:promote-prod"],
    );
    const steps = workflow("release.yml").doc.jobs["promote-prod"].steps ?? [];
    const up = steps.find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command === "up");
    assert.ok(up, "release.yml runs pulumi up");
    assert.match(
      stackOf(workflow("release.yml").doc.jobs["promote-prod"], up),
      /\/image-factory\/prod$/,
    );
    // Promotion builds nothing: no builders, no AWS on the prod job.
    assert.ok(!steps.some((s) => s.uses === "./.github/actions/remote-builders"));
    const devSteps = workflow("main.yml").doc.jobs["deploy-dev"].steps ?? [];
    const devUp = devSteps.find(
      (s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command === "up",
    );
    assert.ok(devUp, "main.yml runs pulumi up");
    assert.match(
      stackOf(workflow("main.yml").doc.jobs["deploy-dev"], devUp),
      /\/image-factory\/dev$/,
    );
    assert.equal(workflow("main.yml").doc.jobs["deploy-dev"].environment, undefined);
  });

  it("preview dev and prod on pull requests with one edited comment per stack", async () => {
    const preview = workflow("pr.yml").doc.jobs.preview;
    assert.deepEqual(preview.strategy?.matrix?.stack, ["dev", "prod"]);
    const step = (preview.steps ?? []).find(
      (s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command === "preview",
    );
    assert.ok(step, "pr.yml runs pulumi preview");
    assert.equal(step.with?.["comment-on-pr"], true);
    assert.equal(step.with?.["edit-pr-comment"], true);
    assert.equal(
      stackOf(preview, step),
      "${{ vars.PULUMI_ORG }}/image-factory/${{ matrix.stack }}",
    );
    assert.match(String(step.env?.PULUMI_ACCESS_TOKEN), /secrets\.PULUMI_ACCESS_TOKEN/);
    assert.deepEqual(preview.needs, "test");
    // Builders are created from the stack's builderCommands with the mTLS material from secrets.
    const builders = (preview.steps ?? []).find(
      (s) => s.uses === "./.github/actions/remote-builders",
    );
    assert.ok(builders);
    assert.match(String(builders.with?.["client-key-pem"]), /secrets\.BUILDKIT_CLIENT_KEY_PEM/);
  });

  it("keep fork pull requests to the tests: no preview job, no secrets in the tests", async () => {
    const pr = workflow("pr.yml").doc.jobs;
    assert.equal(pr.test.uses, "./.github/workflows/test.yml");
    assert.equal(pr.test.if, undefined, "the tests run for every pull request, forks included");
    assert.match(
      String(pr.preview.if),
      /github\.event\.pull_request\.head\.repo\.full_name == github\.repository/,
    );
    const test = workflow("test.yml");
    assert.doesNotMatch(test.text, /secrets\./, "test.yml must work without secrets");
    const job = test.doc.jobs.test;
    assert.deepEqual(perms(job), { contents: "read" });
    assert.ok((job.steps ?? []).some((s) => s.run === "npm test"));
    assert.ok((job.steps ?? []).some((s) => s.run === "npm ci"));
  });

  it("remote-builders action scripts pass shellcheck", async () => {
    const shellcheck = findTool("shellcheck", "run scripts/install-apt.sh");
    for (const id of ["read", "create"]) {
      const r = spawnSync(shellcheck, ["-s", "bash", "-"], {
        input: actionScript(id),
        encoding: "utf8",
      });
      assert.equal(r.status, 0, `shellcheck on step ${id}:\n${r.stdout}${r.stderr}`);
    }
  });

  it("notify on every dev and prod deploy outcome, from a secret webhook", async () => {
    for (const [file, jobId, stack] of [
      ["main.yml", "deploy-dev", "dev"],
      ["release.yml", "promote-prod", "prod"],
    ] as const) {
      const steps = workflow(file).doc.jobs[jobId].steps ?? [];
      const notify = steps.find((s) => s.run === "npm run notify");
      assert.ok(notify, `${file} has a notify step`);
      assert.equal(notify.if, "always()");
      assert.equal(notify["continue-on-error"], true);
      assert.equal(notify.env?.SLACK_WEBHOOK_URL, "${{ secrets.SLACK_WEBHOOK_URL }}");
      assert.equal(notify.env?.NOTIFY_STACK, stack);
      assert.equal(notify.env?.NOTIFY_STATUS, "${{ job.status }}");
      assert.match(String(notify.env?.NOTIFY_DIGEST), /steps\.up\.outputs\.digest/);
      assert.match(String(notify.env?.NOTIFY_TAGS), /steps\.up\.outputs\.tags/);
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    assert.match(pkg.scripts.notify, /scripts\/notify\.ts/);
  });
});

/** One step's `run` script of the remote-builders composite action. */
function actionScript(stepId: string): string {
  const action = parse(
    fs.readFileSync(path.join(ACTIONS, "remote-builders/action.yml"), "utf8"),
  ) as { runs: { steps: Step[] } };
  const step = action.runs.steps.find((s) => s.id === stepId);
  assert.ok(step && typeof step.run === "string", `remote-builders has no run step "${stepId}"`);
  return step.run;
}

function docker(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("docker", args, { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("remote-builders action (real buildx, local BuildKit over mTLS)", () => {
  const cache = process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache/image-factory");
  const certs = path.join(cache, "buildkit/certs");
  const name = "image-factory-delivery-test-amd64";
  let tmp = "";

  before(async () => {
    const buildx = docker(["buildx", "version"]);
    assert.equal(
      buildx.status,
      0,
      `docker buildx is missing (scripts/install-go-tools.sh buildx installs it): ${buildx.out}`,
    );
    for (const f of ["ca.pem", "client.pem", "client-key.pem"]) {
      assert.ok(
        fs.existsSync(path.join(certs, f)),
        `${certs}/${f} is missing: run scripts/buildkit.sh (local BuildKit with mTLS)`,
      );
    }
    findTool("jq", "run scripts/install-apt.sh (jq is pinned in scripts/apt-packages.txt)");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "if-builders-"));
  });

  after(async () => {
    docker(["buildx", "rm", name]);
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  function runCreate(
    commands: unknown,
    extraEnv: Record<string, string> = {},
  ): { status: number | null; out: string; outputs: string } {
    const file = path.join(tmp, "commands.json");
    fs.writeFileSync(file, typeof commands === "string" ? commands : JSON.stringify(commands));
    const outputs = path.join(tmp, "github-output");
    fs.writeFileSync(outputs, "");
    const r = spawnSync("bash", ["-c", actionScript("create")], {
      encoding: "utf8",
      env: {
        PATH: process.env.PATH ?? "",
        HOME: os.homedir(),
        BUILDER_COMMANDS_FILE: file,
        GITHUB_OUTPUT: outputs,
        BUILDKIT_CA_PEM: fs.readFileSync(path.join(certs, "ca.pem"), "utf8"),
        BUILDKIT_CLIENT_CERT_PEM: fs.readFileSync(path.join(certs, "client.pem"), "utf8"),
        BUILDKIT_CLIENT_KEY_PEM: fs.readFileSync(path.join(certs, "client-key.pem"), "utf8"),
        ...extraEnv,
      },
    });
    return {
      status: r.status,
      out: `${r.stdout}${r.stderr}`,
      outputs: fs.readFileSync(outputs, "utf8"),
    };
  }

  it("creates the builder BuildHosts describes, writes the PEMs (mode 600) and reaches BuildKit", async () => {
    const files = certFiles(path.join(tmp, "pki"));
    // The command exactly as the BuildHosts component prints it; only the TLS server name differs,
    // because the local daemon's certificate names localhost rather than the builder.
    const command = builderCommand({
      stack: "delivery-test",
      arch: "amd64",
      endpoint: "tcp://127.0.0.1:1234",
      files,
    }).replace(`servername=${name}`, "servername=localhost");
    assert.match(command, new RegExp(`--name ${name} `));
    const r = runCreate({ amd64: command });
    assert.equal(r.status, 0, r.out);
    assert.equal(r.outputs.trim(), `builders=${name}`);
    for (const f of [files.ca, files.cert, files.key]) {
      assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${f} mode`);
    }
    assert.equal(
      fs.readFileSync(files.key, "utf8").trim(),
      fs.readFileSync(path.join(certs, "client-key.pem"), "utf8").trim(),
    );
    const inspect = docker(["buildx", "inspect", "--bootstrap", name]);
    assert.equal(inspect.status, 0, inspect.out);
    assert.match(inspect.out, /Driver:\s+remote/);
    assert.match(inspect.out, /Endpoint:\s+tcp:\/\/127\.0\.0\.1:1234/);
    assert.match(inspect.out, /Status:\s+running/);
  });

  it("refuses a command of another shape before running anything", async () => {
    const marker = path.join(tmp, "pwned");
    const good = `docker buildx create --name image-factory-ok-amd64 --driver remote --driver-opt cacert=${tmp}/a.pem --platform linux/amd64 tcp://127.0.0.1:1234`;
    for (const bad of [
      `docker buildx create --name image-factory-x-amd64 --driver remote --driver-opt cacert=/tmp/a.pem;touch ${marker} --platform linux/amd64 tcp://127.0.0.1:1234`,
      `docker buildx create --name image-factory-x-amd64 --driver remote --driver-opt cacert=$(touch ${marker}) --platform linux/amd64 tcp://127.0.0.1:1234`,
      `touch ${marker}`,
    ]) {
      const r = runCreate([good, bad]);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /refusing an unexpected builder command/);
      assert.equal(fs.existsSync(marker), false, "the refused command ran");
      assert.notEqual(
        docker(["buildx", "inspect", "image-factory-ok-amd64"]).status,
        0,
        "a builder was created although the output was refused",
      );
    }
  });

  it("needs the three PEM secrets when there are commands, and nothing when there are none", async () => {
    const r = runCreate(
      {
        amd64:
          "docker buildx create --name image-factory-y-amd64 --driver remote --driver-opt cacert=/x --platform linux/amd64 tcp://127.0.0.1:1",
      },
      { BUILDKIT_CLIENT_KEY_PEM: "" },
    );
    assert.equal(r.status, 1);
    assert.match(
      r.out,
      /secrets BUILDKIT_CA_PEM, BUILDKIT_CLIENT_CERT_PEM and BUILDKIT_CLIENT_KEY_PEM are required/,
    );
    const none = runCreate("");
    assert.equal(none.status, 0, none.out);
    assert.equal(none.outputs.trim(), "builders=");
    const garbage = runCreate('"just a string"');
    assert.equal(garbage.status, 1);
    assert.match(garbage.out, /not a JSON object or array/);
  });
});
