// The delivery workflows against real tools: actionlint (pinned in scripts/versions.env, with
// shellcheck on every `run:` script), shellcheck on the composite actions' scripts, the
// remote-builders action against the real buildx and the local BuildKit over mTLS, pr.yml's
// comment script and ghcr-retention.yml's prune script against a stand-in `gh` (real bash and jq). A missing tool FAILS these tests with
// the command that installs it. The static checks are test/unit/workflows.test.ts.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { builderCommand, certFiles } from "../../components/buildHosts";
import { cacheDir } from "../e2e/lib/registry";

const REPO = path.resolve(__dirname, "../..");
const ACTIONS = path.join(REPO, ".github/actions");
const CACHE = cacheDir();

type Json = Record<string, unknown>;

interface Step {
  id?: string;
  name?: string;
  run?: string;
  uses?: string;
}

function findTool(name: string, hint: string): string {
  const candidates = [
    path.join(CACHE, "bin", name),
    ...(process.env.PATH ?? "")
      .split(path.delimiter)
      .filter((d) => d !== "")
      .map((d) => path.join(d, name)),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (found === undefined) {
    assert.fail(`${name} is not installed (looked in ${CACHE}/bin and PATH): ${hint}`);
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

/** The `run` scripts of a composite action, by step id or name. */
function actionSteps(action: string): Step[] {
  const doc = parse(fs.readFileSync(path.join(ACTIONS, action, "action.yml"), "utf8")) as {
    runs: { steps: Step[] };
  };
  return doc.runs.steps;
}

function actionScript(action: string, stepId: string): string {
  const step = actionSteps(action).find((s) => s.id === stepId);
  assert.ok(step && typeof step.run === "string", `${action} has no run step "${stepId}"`);
  return step.run;
}

/** A `run` script of a workflow job, by step name. */
function workflowScript(file: string, jobId: string, stepName: string): string {
  const doc = parse(fs.readFileSync(path.join(REPO, ".github/workflows", file), "utf8")) as {
    jobs: Record<string, { steps?: Step[] }>;
  };
  const step = (doc.jobs[jobId]?.steps ?? []).find((s) => s.name === stepName);
  assert.ok(step && typeof step.run === "string", `${file}:${jobId} has no run step "${stepName}"`);
  return step.run;
}

describe("delivery workflows against actionlint and shellcheck", () => {
  it("pass the real actionlint, at the pinned version (with shellcheck on every run: script)", async () => {
    const env = fs.readFileSync(path.join(REPO, "scripts/versions.env"), "utf8");
    const pinned = /^ACTIONLINT_VERSION=v?(\S+)$/m.exec(env)?.[1];
    assert.ok(pinned, "ACTIONLINT_VERSION missing from scripts/versions.env");
    const version = actionlint(["-version"]);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.split("\n")[0], pinned, "actionlint is not the pinned version");
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

  it("the composite actions' scripts pass shellcheck", async () => {
    const shellcheck = findTool("shellcheck", "run scripts/install-apt.sh");
    const scripts = ["factory-tools", "remote-builders"].flatMap((action) =>
      actionSteps(action)
        .filter((s) => typeof s.run === "string")
        .map((s) => ({ where: `${action}:${s.id ?? s.name}`, run: String(s.run) })),
    );
    assert.ok(scripts.length >= 4, `only ${scripts.length} scripts found`);
    for (const { where, run } of scripts) {
      const r = spawnSync(shellcheck, ["-s", "bash", "-"], { input: run, encoding: "utf8" });
      assert.equal(r.status, 0, `shellcheck on ${where}:\n${r.stdout}${r.stderr}`);
    }
  });
});

/** A new temporary folder whose bin/ holds `fakeGh` as `gh`; the scripts need the real jq. */
function withFakeGh(prefix: string, fakeGh: string): string {
  findTool("jq", "run scripts/install-apt.sh (jq is pinned in scripts/apt-packages.txt)");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(path.join(tmp, "bin"));
  fs.writeFileSync(path.join(tmp, "bin", "gh"), fakeGh, { mode: 0o755 });
  return tmp;
}

describe("pr.yml comment script (real bash and jq, a stand-in gh)", () => {
  const script = (): string =>
    workflowScript("pr.yml", "comment", "Post or edit one comment per stack");
  let tmp = "";

  // `gh api`: logs each call; a write stores its --input payload; a read answers the comment list
  // from comments.json through the call's --jq filter, as gh does.
  const FAKE_GH = [
    "#!/usr/bin/env bash",
    "set -euo pipefail",
    'printf "%s\\n" "$*" >>"$FAKE_DIR/calls.log"',
    'args=("$@"); filter=""; input=""; method=GET',
    "for ((i = 0; i < ${#args[@]}; i++)); do",
    '  case "${args[i]}" in',
    '    --jq) filter="${args[i+1]}" ;;',
    '    --input) input="${args[i+1]}" ;;',
    '    --method) method="${args[i+1]}" ;;',
    "  esac",
    "done",
    'if [[ "$method" != GET ]]; then',
    '  n=$(find "$FAKE_DIR" -name "payload-*.json" | wc -l)',
    '  cp "$input" "$FAKE_DIR/payload-$n.json"',
    '  echo "{}"',
    "  exit 0",
    "fi",
    'jq -r "$filter" "$FAKE_DIR/comments.json"',
    "",
  ].join("\n");

  beforeEach(async () => {
    tmp = withFakeGh("if-comment-", FAKE_GH);
    fs.mkdirSync(path.join(tmp, "work"));
    fs.mkdirSync(path.join(tmp, "runner"));
  });

  afterEach(async () => {
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  function run(
    reviews: Record<string, string>,
    comments: unknown[],
  ): { status: number | null; out: string; calls: string[]; payloads: string[] } {
    for (const [stack, body] of Object.entries(reviews)) {
      const dir = path.join(tmp, "work", "reviews", `review-${stack}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "review.md"), body);
    }
    fs.writeFileSync(path.join(tmp, "comments.json"), JSON.stringify(comments));
    const r = spawnSync("bash", ["-c", script()], {
      cwd: path.join(tmp, "work"),
      encoding: "utf8",
      env: {
        PATH: `${path.join(tmp, "bin")}${path.delimiter}${process.env.PATH ?? ""}`,
        FAKE_DIR: tmp,
        GH_TOKEN: "not-a-token",
        REPO: "acme/shop-api",
        PR_NUMBER: "42",
        RUNNER_TEMP: path.join(tmp, "runner"),
      },
    });
    const log = path.join(tmp, "calls.log");
    const payloads = fs
      .readdirSync(tmp)
      .filter((f) => f.startsWith("payload-"))
      .sort()
      .map(
        (f) => (JSON.parse(fs.readFileSync(path.join(tmp, f), "utf8")) as { body: string }).body,
      );
    return {
      status: r.status,
      out: `${r.stdout}${r.stderr}`,
      calls: fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [],
      payloads,
    };
  }

  it("posts one comment per stack, starting with the stack's marker, the review verbatim", async () => {
    const pwned = path.join(tmp, "pwned");
    const review = `## dev\n\n| a | b |\n|---|---|\n| \`$(touch ${pwned})\` | "q" \\ |\n`;
    const r = run({ dev: review, prod: "## prod\n" }, []);
    assert.equal(r.status, 0, r.out);
    assert.equal(fs.existsSync(pwned), false, "the review's text was run");
    const writes = r.calls.filter((c) => c.includes("--method"));
    assert.deepEqual(
      writes.map((c) => c.split(" --input")[0]),
      [
        "api --method POST repos/acme/shop-api/issues/42/comments",
        "api --method POST repos/acme/shop-api/issues/42/comments",
      ],
    );
    assert.deepEqual(r.payloads, [
      `<!-- image-factory-review:dev -->\n${review}`,
      "<!-- image-factory-review:prod -->\n## prod\n",
    ]);
  });

  it("edits the bot's earlier comment for the stack, never a person's, and keeps one marker", async () => {
    const marker = "<!-- image-factory-review:dev -->";
    const r = run({ dev: `${marker}\n## dev, again\n` }, [
      { id: 7, user: { login: "someone" }, body: `${marker}\nnot the bot` },
      { id: 9, user: { login: "github-actions[bot]" }, body: "<!-- image-factory-review:prod -->" },
      { id: 11, user: { login: "github-actions[bot]" }, body: `${marker}\nold` },
    ]);
    assert.equal(r.status, 0, r.out);
    const writes = r.calls.filter((c) => c.includes("--method"));
    assert.deepEqual(
      writes.map((c) => c.split(" --input")[0]),
      ["api --method PATCH repos/acme/shop-api/issues/comments/11"],
    );
    assert.deepEqual(r.payloads, [`${marker}\n## dev, again\n`]);
  });

  it("cuts a review that GitHub would refuse, and says where the whole one is", async () => {
    const r = run({ dev: "x".repeat(70_000) }, []);
    assert.equal(r.status, 0, r.out);
    const body = r.payloads[0];
    assert.ok(body.length < 65_536, `${body.length} characters`);
    assert.match(body, /truncated: the whole review is the artifact review-dev of this run/);
  });

  it("does nothing without reviews, and refuses an unexpected artifact name", async () => {
    const none = run({}, []);
    assert.equal(none.status, 0, none.out);
    assert.match(none.out, /no review was produced/);
    assert.deepEqual(none.calls, []);
    const bad = run({ "dev$(id)": "## x\n" }, []);
    assert.equal(bad.status, 1, bad.out);
    assert.match(bad.out, /unexpected artifact/);
  });
});

describe("ghcr-retention.yml prune script (real bash, jq and date, a stand-in gh)", () => {
  const script = (): string =>
    workflowScript(
      "ghcr-retention.yml",
      "prune",
      "Delete old versions (untagged ones of the package, all of its quarantine package)",
    );
  let tmp = "";

  // `gh api`: logs each call; the owner is an organisation; a package's versions come from
  // versions-<package>.json (split in two pages, as --paginate prints them) or a 404.
  const FAKE_GH = `#!/usr/bin/env bash
set -euo pipefail
printf '%s\\n' "$*" >>"$FAKE_DIR/calls.log"
for last; do :; done
case "$*" in
  *"--jq .type"*) echo Organization ;;
  *"--method DELETE"*) ;;
  *"--paginate "*)
    f="$FAKE_DIR/versions-$(basename "$(dirname "$last")").json"
    [[ -f "$f" ]] || { echo "gh: Not Found (HTTP 404)" >&2; exit 1; }
    jq -c '.[:1]' "$f"; jq -c '.[1:]' "$f" ;;
  *) echo "unexpected gh call: $*" >&2; exit 2 ;;
esac
`;

  beforeEach(async () => {
    tmp = withFakeGh("if-retention-", FAKE_GH);
  });

  afterEach(async () => {
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  const daysAgo = (n: number): string => new Date(Date.now() - n * 86_400_000).toISOString();
  const version = (id: number, age: number, tags: string[]): Json => ({
    id,
    updated_at: daysAgo(age),
    metadata: { container: { tags } },
  });

  function prune(
    packages: Record<string, Json[]>,
    dryRun: boolean,
  ): { status: number | null; out: string; deleted: string[] } {
    for (const [name, versions] of Object.entries(packages))
      fs.writeFileSync(path.join(tmp, `versions-${name}.json`), JSON.stringify(versions));
    const r = spawnSync("bash", ["-c", script()], {
      encoding: "utf8",
      env: {
        PATH: `${path.join(tmp, "bin")}${path.delimiter}${process.env.PATH ?? ""}`,
        FAKE_DIR: tmp,
        RUNNER_TEMP: tmp,
        GH_TOKEN: "not-a-token",
        OWNER: "acme",
        PACKAGE: "shop-api",
        RETENTION_DAYS: "30",
        REVIEW_RETENTION_DAYS: "14",
        DRY_RUN: String(dryRun),
      },
    });
    const log = path.join(tmp, "calls.log");
    const calls = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [];
    return {
      status: r.status,
      out: `${r.stdout}${r.stderr}`,
      deleted: calls
        .filter((c) => c.includes("--method DELETE"))
        .map((c) => c.split(" ").pop() ?? ""),
    };
  }

  const packages = {
    // Untagged and old: 2; untagged but recent: 3; tagged and old: 1; the newest: 4.
    "shop-api": [
      version(1, 90, ["main"]),
      version(2, 45, []),
      version(3, 5, []),
      version(4, 0, ["edge"]),
    ],
    // Quarantine: old tagged (5) and untagged (6) go; recent (7) and the newest (8) stay.
    "shop-api-review": [
      version(5, 20, ["sha-1a2b3c4-linux-amd64"]),
      version(6, 15, []),
      version(7, 13, ["pr-12-linux-amd64"]),
      version(8, 1, ["sha-5d6e7f8-linux-arm64"]),
    ],
  };

  it("deletes the package's old untagged versions and every quarantine version older than 14 days", async () => {
    const r = prune(packages, false);
    assert.equal(r.status, 0, r.out);
    assert.deepEqual(r.deleted, [
      "/orgs/acme/packages/container/shop-api/versions/2",
      "/orgs/acme/packages/container/shop-api-review/versions/5",
      "/orgs/acme/packages/container/shop-api-review/versions/6",
    ]);
  });

  it("deletes nothing on a dry run and lists what it would delete", async () => {
    const r = prune(packages, true);
    assert.equal(r.status, 0, r.out);
    assert.deepEqual(r.deleted, []);
    assert.match(r.out, /would delete version 2 of shop-api\n/);
    assert.match(r.out, /would delete version 5 of shop-api-review\n/);
    assert.match(r.out, /would delete version 6 of shop-api-review\n/);
  });

  it("never deletes a package's newest version, however old", async () => {
    const r = prune(
      {
        "shop-api": [version(11, 60, ["main"])],
        "shop-api-review": [version(9, 40, []), version(10, 30, ["pr-3-linux-amd64"])],
      },
      false,
    );
    assert.equal(r.status, 0, r.out);
    assert.deepEqual(r.deleted, ["/orgs/acme/packages/container/shop-api-review/versions/9"]);
  });

  it("skips a quarantine package that does not exist yet, but not a missing stack package", async () => {
    const r = prune({ "shop-api": [version(11, 60, ["main"])] }, false);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /shop-api-review does not exist \(yet\): nothing to prune/);
    const missing = prune({ "shop-api-review": [] }, false);
    fs.rmSync(path.join(tmp, "versions-shop-api.json"));
    const again = prune({}, false);
    assert.equal(again.status, 1, again.out);
    assert.match(again.out, /HTTP 404/);
    assert.equal(missing.status, 0, missing.out);
  });
});

function docker(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("docker", args, { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("remote-builders action (real buildx, local BuildKit over mTLS)", () => {
  const certs = path.join(CACHE, "buildkit/certs");
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
    const r = spawnSync("bash", ["-c", actionScript("remote-builders", "create")], {
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
    assert.ok(command.includes(`--name ${name} `), command);
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
      assert.ok(r.out.includes("refusing an unexpected builder command"), r.out);
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
    assert.ok(
      r.out.includes(
        "secrets BUILDKIT_CA_PEM, BUILDKIT_CLIENT_CERT_PEM and BUILDKIT_CLIENT_KEY_PEM are required",
      ),
      r.out,
    );
    const none = runCreate("");
    assert.equal(none.status, 0, none.out);
    assert.equal(none.outputs.trim(), "builders=");
    const garbage = runCreate('"just a string"');
    assert.equal(garbage.status, 1);
    assert.ok(garbage.out.includes("not a JSON object or array"), garbage.out);
  });
});
