// scripts/notify.ts run as the CLI the workflows call (`npm run notify`), against real HTTP servers
// on 127.0.0.1 that play the Slack webhook and the Teams workflow webhook.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import {
  buildSlackPayload,
  buildTeamsPayload,
  notificationFromEnv,
  parseGates,
  parseTags,
} from "../../scripts/notify";

const REPO = path.resolve(__dirname, "../..");
const SCRIPT = path.join(REPO, "scripts/notify.ts");
const TS_NODE = require.resolve("ts-node/dist/bin.js");
// The tokens live in the webhooks' path and query: they must never show up in the output.
const SLACK_PATH = "/services/T000/B000/s3cr3t-w3bh00k-t0k3n";
const TEAMS_PATH =
  "/workflows/0f1e2d3c4b5a/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3tTeamsS1gnatur3";
const DIGEST = `sha256:${"ab".repeat(32)}`;
const RUN_URL = "https://github.com/acme/shop-api/actions/runs/42";
const REVIEW_URL = "https://github.com/acme/shop-api/pull/12#issuecomment-7";
const TAGS = ["ghcr.io/acme/shop-api:sha-1a2b3c4", "ghcr.io/acme/shop-api:main"];
// The gate results in the review's shape, with a failed, a waived and a not-run check.
const GATES = {
  passed: false,
  checks: [
    { name: "imageSize[linux/amd64]", status: "failed", measured: 612.4, limit: 500 },
    { name: "criticalVulnerabilities[linux/amd64]", status: "waived", measured: 1, limit: 0 },
    { name: "coverage", status: "passed", measured: 91.2, limit: 80 },
    { name: "efficiency[linux/arm64]", status: "not-run", reason: "dive not installed" },
  ],
  notRun: ["efficiency[linux/arm64]"],
  waived: { "criticalVulnerabilities[linux/amd64]": "CVE-2023-45853: minizip unused" },
};

interface Received {
  method: string;
  url: string;
  contentType: string;
  body: unknown;
}

interface Hook {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

interface HookOptions {
  status?: number;
  /** The answer's body; a function gets the request's path (a server that echoes it back). */
  answer?: string | ((requestPath: string) => string);
  /** Never answer (the client must time out). */
  hang?: boolean;
  path?: string;
}

async function startHook(options: HookOptions = {}): Promise<Hook> {
  const { status = 200, answer = "ok", hang = false, path: hookPath = SLACK_PATH } = options;
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({
        method: req.method ?? "",
        url: req.url ?? "",
        contentType: String(req.headers["content-type"]),
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
      });
      if (hang) return;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(typeof answer === "function" ? answer(req.url ?? "") : answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${hookPath}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runNotify(env: Record<string, string>): Promise<Run> {
  // Only what the script needs: no webhook leaks in from the caller's environment.
  const child = spawn(process.execPath, [TS_NODE, "--transpile-only", SCRIPT], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { code, stdout, stderr };
}

function assertNoSecret(run: Run): void {
  for (const stream of [run.stdout, run.stderr]) {
    for (const secret of ["s3cr3t", "T000/B000", "0f1e2d3c4b5a", "sig="]) {
      assert.ok(
        !stream.includes(secret),
        `a webhook secret (${secret}) leaked into the output: ${stream}`,
      );
    }
  }
}

/** Runs `body` against a webhook started with `options`, and stops the webhook whatever happens. */
async function withHook(options: HookOptions, body: (hook: Hook) => Promise<void>): Promise<void> {
  const hook = await startHook(options);
  try {
    await body(hook);
  } finally {
    await hook.close();
  }
}

/** The run warned with exactly `stderr`, still exited 0 (a deploy never fails on a notification)
 *  and printed no secret. */
function assertWarned(run: Run, stderr: string): void {
  assert.equal(run.code, 0);
  assert.equal(run.stderr, stderr);
  assertNoSecret(run);
}

/** The facts both formats carry for the success deploy of dev with GATES. */
const FACTS = [
  { title: "Stack", value: "dev" },
  { title: "Status", value: "success" },
  { title: "Image", value: "ghcr.io/acme/shop-api" },
  { title: "Digest", value: DIGEST },
  { title: "Tags", value: "ghcr.io/acme/shop-api:sha-1a2b3c4, ghcr.io/acme/shop-api:main" },
  { title: "Gates", value: "failed (1 passed, 1 failed, 1 waived, 1 not run)" },
  { title: "Failed checks", value: "imageSize[linux/amd64] (measured 612.4, limit 500)" },
  {
    title: "Waived checks",
    value: "criticalVulnerabilities[linux/amd64] (CVE-2023-45853: minizip unused)",
  },
  { title: "Not run", value: "efficiency[linux/arm64]" },
];

const SLACK_BODY = {
  text:
    `:white_check_mark: image-factory deploy to dev succeeded. digest: ${DIGEST}; ` +
    "tags: ghcr.io/acme/shop-api:sha-1a2b3c4, ghcr.io/acme/shop-api:main; " +
    "gates: failed (1 passed, 1 failed, 1 waived, 1 not run); " +
    "failed checks: imageSize[linux/amd64] (measured 612.4, limit 500); " +
    "waived checks: criticalVulnerabilities[linux/amd64] (CVE-2023-45853: minizip unused); " +
    "not run: efficiency[linux/arm64]; " +
    `run: ${RUN_URL}; review: ${REVIEW_URL}`,
  blocks: [
    {
      type: "section",
      text: {
        type: "mrkdwn",
        text: ":white_check_mark: *image-factory* deploy to *dev* succeeded",
      },
    },
    {
      type: "section",
      fields: [
        { type: "mrkdwn", text: "*Stack*\ndev" },
        { type: "mrkdwn", text: "*Status*\nsuccess" },
        { type: "mrkdwn", text: `*Digest*\n\`${DIGEST}\`` },
        { type: "mrkdwn", text: "*Image*\nghcr.io/acme/shop-api" },
      ],
    },
    {
      type: "section",
      text: {
        type: "mrkdwn",
        text: "*Tags*\nghcr.io/acme/shop-api:sha-1a2b3c4, ghcr.io/acme/shop-api:main",
      },
    },
    {
      type: "section",
      text: {
        type: "mrkdwn",
        text:
          "*Gates*\nfailed (1 passed, 1 failed, 1 waived, 1 not run)\n" +
          "*Failed checks*\nimageSize[linux/amd64] (measured 612.4, limit 500)\n" +
          "*Waived checks*\ncriticalVulnerabilities[linux/amd64] (CVE-2023-45853: minizip unused)\n" +
          "*Not run*\nefficiency[linux/arm64]",
      },
    },
    {
      type: "context",
      elements: [
        { type: "mrkdwn", text: `<${RUN_URL}|Workflow run>` },
        { type: "mrkdwn", text: `<${REVIEW_URL}|Review>` },
      ],
    },
  ],
};

const TEAMS_BODY = {
  type: "message",
  attachments: [
    {
      contentType: "application/vnd.microsoft.card.adaptive",
      content: {
        $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
        type: "AdaptiveCard",
        version: "1.4",
        body: [
          {
            type: "TextBlock",
            text: "✅ image-factory deploy to dev succeeded",
            weight: "Bolder",
            size: "Medium",
            color: "Good",
            wrap: true,
          },
          { type: "FactSet", facts: FACTS },
        ],
        actions: [
          { type: "Action.OpenUrl", title: "Workflow run", url: RUN_URL },
          { type: "Action.OpenUrl", title: "Review", url: REVIEW_URL },
        ],
      },
    },
  ],
};

function deployEnv(): Record<string, string> {
  return {
    NOTIFY_STACK: "dev",
    NOTIFY_STATUS: "success",
    NOTIFY_DIGEST: DIGEST,
    NOTIFY_IMAGE: "ghcr.io/acme/shop-api",
    NOTIFY_TAGS: JSON.stringify(TAGS),
    NOTIFY_GATES: JSON.stringify(GATES),
    NOTIFY_RUN_URL: RUN_URL,
    NOTIFY_REVIEW_URL: REVIEW_URL,
  };
}

describe("notify (scripts/notify.ts)", () => {
  it("posts the stack, status, digest, tags, gates and links to Slack", async () => {
    await withHook({}, async (hook) => {
      const run = await runNotify({ SLACK_WEBHOOK_URL: hook.url, ...deployEnv() });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(
        run.stdout,
        `notify: sent the success notification for stack dev to Slack (digest ${DIGEST}, 2 tags)\n`,
      );
      assert.equal(run.stderr, "");
      assertNoSecret(run);
      assert.equal(hook.received.length, 1);
      const [req] = hook.received;
      assert.equal(req.method, "POST");
      assert.equal(req.url, SLACK_PATH);
      assert.equal(req.contentType, "application/json");
      assert.deepEqual(req.body, SLACK_BODY);
    });
  });

  it("posts the same facts to a Teams workflow webhook as an Adaptive Card", async () => {
    await withHook({ status: 202, answer: "", path: TEAMS_PATH }, async (hook) => {
      const run = await runNotify({ TEAMS_WEBHOOK_URL: hook.url, ...deployEnv() });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(
        run.stdout,
        `notify: sent the success notification for stack dev to Teams (digest ${DIGEST}, 2 tags)\n`,
      );
      assertNoSecret(run);
      assert.equal(hook.received.length, 1);
      assert.equal(hook.received[0].url, TEAMS_PATH);
      assert.equal(hook.received[0].contentType, "application/json");
      assert.deepEqual(hook.received[0].body, TEAMS_BODY);
    });
  });

  it("posts to both when both webhooks are set", async () => {
    const slack = await startHook();
    const teams = await startHook({ status: 202, answer: "", path: TEAMS_PATH });
    try {
      const run = await runNotify({
        SLACK_WEBHOOK_URL: slack.url,
        TEAMS_WEBHOOK_URL: teams.url,
        ...deployEnv(),
      });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stdout.split("\n").sort(), [
        "",
        `notify: sent the success notification for stack dev to Slack (digest ${DIGEST}, 2 tags)`,
        `notify: sent the success notification for stack dev to Teams (digest ${DIGEST}, 2 tags)`,
      ]);
      assertNoSecret(run);
      assert.deepEqual(
        slack.received.map((r) => r.body),
        [SLACK_BODY],
      );
      assert.deepEqual(
        teams.received.map((r) => r.body),
        [TEAMS_BODY],
      );
    } finally {
      await slack.close();
      await teams.close();
    }
  });

  it("skips with a log line when no webhook is set", async () => {
    const run = await runNotify(deployEnv());
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      "notify: neither SLACK_WEBHOOK_URL nor TEAMS_WEBHOOK_URL is set; skipping the success notification for stack dev\n",
    );
    assert.equal(run.stderr, "");
    const blank = await runNotify({
      SLACK_WEBHOOK_URL: "",
      TEAMS_WEBHOOK_URL: "  ",
      NOTIFY_STACK: "prod",
      NOTIFY_STATUS: "failure",
    });
    assert.equal(blank.code, 0);
    assert.match(blank.stdout, /skipping the failure notification for stack prod/);
  });

  it("warns and exits 0, without printing the URL, when the webhook answers HTTP 500", async () => {
    // The server echoes the request path back, as some error pages do: it is redacted.
    const options: HookOptions = { status: 500, answer: (p) => `invalid_token for ${p}` };
    await withHook(options, async (hook) => {
      const run = await runNotify({ SLACK_WEBHOOK_URL: hook.url, ...deployEnv() });
      assert.equal(run.stdout, "");
      assertWarned(
        run,
        "notify: warning: the success notification for stack dev was not delivered to Slack (SLACK_WEBHOOK_URL): " +
          "http://127.0.0.1 answered HTTP 500: invalid_token for [redacted]\n",
      );
      assert.equal(hook.received.length, 1);
    });
  });

  it("warns and exits 0 when nothing listens, and still delivers to the other webhook", async () => {
    const gone = await startHook({ path: TEAMS_PATH });
    await gone.close();
    const slack = await startHook();
    try {
      const run = await runNotify({
        SLACK_WEBHOOK_URL: slack.url,
        TEAMS_WEBHOOK_URL: gone.url,
        ...deployEnv(),
      });
      assertWarned(
        run,
        "notify: warning: the success notification for stack dev was not delivered to Teams (TEAMS_WEBHOOK_URL): " +
          "request to http://127.0.0.1 failed: ECONNREFUSED\n",
      );
      assert.match(run.stdout, /^notify: sent the success notification for stack dev to Slack/);
      assert.deepEqual(
        slack.received.map((r) => r.body),
        [SLACK_BODY],
      );
    } finally {
      await slack.close();
    }
  });

  it("warns and exits 0 when the webhook does not answer in time, as a runner annotation", async () => {
    await withHook({ hang: true, path: TEAMS_PATH }, async (hook) => {
      const started = Date.now();
      const run = await runNotify({
        TEAMS_WEBHOOK_URL: hook.url,
        NOTIFY_TIMEOUT_MS: "500",
        GITHUB_ACTIONS: "true",
        NOTIFY_STACK: "prod",
        NOTIFY_STATUS: "failure",
      });
      assertWarned(
        run,
        "::warning title=notify::notify: the failure notification for stack prod was not delivered to Teams (TEAMS_WEBHOOK_URL): " +
          "request to http://127.0.0.1 failed: no answer within 500 ms\n",
      );
      assert.equal(hook.received.length, 1);
      assert.ok(Date.now() - started < 15000, "the timeout was not applied");
    });
  });

  it("refuses a bad status or a missing stack (exit 2); a bad URL or gates only warn", async () => {
    const bad = await runNotify({ NOTIFY_STACK: "dev", NOTIFY_STATUS: "green" });
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr,
      'notify: error: NOTIFY_STATUS must be one of success, failure, cancelled, got "green"\n',
    );
    const noStack = await runNotify({ NOTIFY_STATUS: "success" });
    assert.equal(noStack.code, 2);
    assert.match(noStack.stderr, /NOTIFY_STACK is required/);
    const badUrl = await runNotify({
      SLACK_WEBHOOK_URL: "ftp://s3cr3t@example.invalid/x",
      TEAMS_WEBHOOK_URL: "not a url s3cr3t",
      NOTIFY_STACK: "dev",
      NOTIFY_STATUS: "success",
      NOTIFY_GATES: "{oops",
    });
    assert.equal(badUrl.code, 0);
    assert.deepEqual(badUrl.stderr.split("\n"), [
      "notify: warning: the gate summary is left out: NOTIFY_GATES is not valid JSON",
      'notify: warning: the success notification for stack dev was not delivered to Slack (SLACK_WEBHOOK_URL): SLACK_WEBHOOK_URL must be an http(s) URL, got scheme "ftp:" (value not shown)',
      "notify: warning: the success notification for stack dev was not delivered to Teams (TEAMS_WEBHOOK_URL): TEAMS_WEBHOOK_URL is not a valid URL (value not shown: it is a credential)",
      "",
    ]);
    assertNoSecret(badUrl);
  });

  it("parses tags given as JSON, commas or lines", async () => {
    assert.deepEqual(parseTags('["a:1","a:2"]'), ["a:1", "a:2"]);
    assert.deepEqual(parseTags("a:1, a:2\na:3"), ["a:1", "a:2", "a:3"]);
    assert.deepEqual(parseTags(undefined), []);
    assert.throws(() => parseTags("[1,2]"), /NOTIFY_TAGS must be a JSON array of strings/);
    assert.throws(() => parseTags("[oops"), /NOTIFY_TAGS looks like JSON but does not parse/);
  });

  it("reads gateResults in the evaluator's shape as the stacks export it today", async () => {
    const gates = parseGates(
      JSON.stringify({
        passed: true,
        checks: [
          {
            gate: "imageSize[linux/amd64]",
            configKey: "gates.maxImageSizeMb",
            measured: 146.8,
            limit: 500,
            unit: "MB",
            status: "passed",
            passed: true,
            detail: "measured 146.8 MB, limit at most 500 MB (gates.maxImageSizeMb)",
          },
          {
            gate: "criticalVulnerabilities[linux/amd64]",
            configKey: "gates.maxCritical",
            measured: null,
            limit: 0,
            unit: "",
            status: "not-run",
            passed: false,
            detail: "not run: Trivy DB not reachable",
          },
        ],
        failed: [],
        notRun: ["criticalVulnerabilities[linux/amd64]"],
      }),
    );
    const payload = buildTeamsPayload({ stack: "dev", status: "success", tags: [], gates });
    assert.deepEqual(payload.attachments[0].content.body[1], {
      type: "FactSet",
      facts: [
        { title: "Stack", value: "dev" },
        { title: "Status", value: "success" },
        { title: "Digest", value: "n/a" },
        { title: "Tags", value: "none" },
        { title: "Gates", value: "passed (1 passed, 1 not run)" },
        { title: "Not run", value: "criticalVulnerabilities[linux/amd64]" },
      ],
    });
    assert.equal(payload.attachments[0].content.actions, undefined);
    assert.deepEqual(parseGates("  "), undefined);
    assert.deepEqual(parseGates('{"passed":"yes"}'), {
      unavailable: 'NOTIFY_GATES.passed must be true or false, got "yes"',
    });
  });

  it("marks a cancelled deploy as a warning in both formats and escapes Slack's control characters", async () => {
    const warnings: string[] = [];
    const n = notificationFromEnv(
      {
        NOTIFY_STACK: "prod",
        NOTIFY_STATUS: "Cancelled",
        NOTIFY_GATES: JSON.stringify({
          passed: true,
          checks: [],
          waived: { secrets: "fixture <key> & co" },
        }),
        NOTIFY_RUN_URL: "javascript:alert(1)",
      },
      warnings,
    );
    assert.deepEqual(warnings, [
      'NOTIFY_RUN_URL is not an http(s) URL, left out: "javascript:alert(1)"',
    ]);
    const slack = buildSlackPayload(n);
    assert.equal(
      slack.text,
      ":warning: image-factory deploy to prod was cancelled. digest: n/a; tags: none; gates: passed (1 waived); waived checks: secrets (fixture <key> & co); run: n/a",
    );
    assert.deepEqual(slack.blocks[3], {
      type: "section",
      text: {
        type: "mrkdwn",
        text: "*Gates*\npassed (1 waived)\n*Waived checks*\nsecrets (fixture &lt;key&gt; &amp; co)",
      },
    });
    assert.equal(
      slack.blocks.some((b) => b.type === "context"),
      false,
    );
    const teams = buildTeamsPayload(n);
    assert.deepEqual(teams.attachments[0].content.body[0], {
      type: "TextBlock",
      text: "⚠️ image-factory deploy to prod was cancelled",
      weight: "Bolder",
      size: "Medium",
      color: "Warning",
      wrap: true,
    });
  });
});
