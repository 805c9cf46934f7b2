// scripts/notify.ts run as the CLI the workflows call (`npm run notify`), against a real HTTP server
// on 127.0.0.1 that plays the Slack webhook.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { buildPayload, parseTags } from "../../scripts/notify";

const REPO = path.resolve(__dirname, "../..");
const SCRIPT = path.join(REPO, "scripts/notify.ts");
const TS_NODE = require.resolve("ts-node/dist/bin.js");
// The token lives in the webhook's path: it must never show up in the script's output.
const SECRET_PATH = "/services/T000/B000/s3cr3t-w3bh00k-t0k3n";
const DIGEST = `sha256:${"ab".repeat(32)}`;

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

async function startHook(status = 200, answer = "ok"): Promise<Hook> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      received.push({
        method: req.method ?? "",
        url: req.url ?? "",
        contentType: String(req.headers["content-type"]),
        body: JSON.parse(text),
      });
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${SECRET_PATH}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
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
    assert.ok(!stream.includes("s3cr3t"), `the webhook token leaked into the output: ${stream}`);
  }
}

describe("notify (scripts/notify.ts)", () => {
  it("posts the stack, status, digest, tags and run URL as a Slack payload", async () => {
    const hook = await startHook();
    try {
      const run = await runNotify({
        SLACK_WEBHOOK_URL: hook.url,
        NOTIFY_STACK: "dev",
        NOTIFY_STATUS: "success",
        NOTIFY_DIGEST: DIGEST,
        NOTIFY_IMAGE: "ghcr.io/acme/shop-api",
        NOTIFY_TAGS: JSON.stringify([
          "ghcr.io/acme/shop-api:sha-1a2b3c4",
          "ghcr.io/acme/shop-api:main",
        ]),
        NOTIFY_RUN_URL: "https://github.com/acme/shop-api/actions/runs/42",
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /notify: sent the success notification for stack dev/);
      assertNoSecret(run);
      assert.equal(hook.received.length, 1);
      const [req] = hook.received;
      assert.equal(req.method, "POST");
      assert.equal(req.url, SECRET_PATH);
      assert.equal(req.contentType, "application/json");
      const body = req.body as { text: string; blocks: unknown[] };
      assert.match(body.text, /deploy to dev succeeded/);
      assert.ok(body.text.includes(DIGEST));
      assert.ok(
        body.text.includes("ghcr.io/acme/shop-api:sha-1a2b3c4, ghcr.io/acme/shop-api:main"),
      );
      assert.ok(body.text.includes("https://github.com/acme/shop-api/actions/runs/42"));
      const blocks = JSON.stringify(body.blocks);
      for (const expected of [
        "*Stack*\\ndev",
        "*Status*\\nsuccess",
        DIGEST,
        "ghcr.io/acme/shop-api:main",
        "<https://github.com/acme/shop-api/actions/runs/42|Workflow run>",
      ]) {
        assert.ok(blocks.includes(expected), `blocks lack ${expected}: ${blocks}`);
      }
    } finally {
      await hook.close();
    }
  });

  it("reports a failed deploy without a digest", async () => {
    const hook = await startHook();
    try {
      const run = await runNotify({
        SLACK_WEBHOOK_URL: hook.url,
        NOTIFY_STACK: "prod",
        NOTIFY_STATUS: "failure",
        NOTIFY_TAGS: "",
      });
      assert.equal(run.code, 0, run.stderr);
      const body = hook.received[0].body as { text: string };
      assert.match(
        body.text,
        /^:x: image-factory deploy to prod failed\. digest: n\/a; tags: none/,
      );
    } finally {
      await hook.close();
    }
  });

  it("skips with a log line when SLACK_WEBHOOK_URL is unset", async () => {
    const run = await runNotify({
      NOTIFY_STACK: "dev",
      NOTIFY_STATUS: "success",
      NOTIFY_DIGEST: DIGEST,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /SLACK_WEBHOOK_URL is not set; skipping the success notification for stack dev/,
    );
    const empty = await runNotify({
      SLACK_WEBHOOK_URL: "",
      NOTIFY_STACK: "dev",
      NOTIFY_STATUS: "failure",
    });
    assert.equal(empty.code, 0);
    assert.match(empty.stdout, /skipping the failure notification/);
  });

  it("fails clearly, without printing the URL, when the webhook answers an error", async () => {
    const hook = await startHook(500, "invalid_token");
    try {
      const run = await runNotify({
        SLACK_WEBHOOK_URL: hook.url,
        NOTIFY_STACK: "dev",
        NOTIFY_STATUS: "success",
        NOTIFY_DIGEST: DIGEST,
      });
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        /notify: error: webhook at http:\/\/127\.0\.0\.1 answered HTTP 500: invalid_token/,
      );
      assertNoSecret(run);
    } finally {
      await hook.close();
    }
  });

  it("fails clearly, without printing the URL, when nothing listens", async () => {
    const hook = await startHook();
    await hook.close();
    const run = await runNotify({
      SLACK_WEBHOOK_URL: hook.url,
      NOTIFY_STACK: "dev",
      NOTIFY_STATUS: "success",
    });
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /notify: error: webhook request to http:\/\/127\.0\.0\.1 failed: ECONNREFUSED/,
    );
    assertNoSecret(run);
  });

  it("refuses a bad status or a missing stack, naming the variable", async () => {
    const bad = await runNotify({ NOTIFY_STACK: "dev", NOTIFY_STATUS: "green" });
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /NOTIFY_STATUS must be one of success, failure, cancelled, got "green"/,
    );
    const noStack = await runNotify({ NOTIFY_STATUS: "success" });
    assert.equal(noStack.code, 2);
    assert.match(noStack.stderr, /NOTIFY_STACK is required/);
    const badUrl = await runNotify({
      SLACK_WEBHOOK_URL: "ftp://s3cr3t@example.invalid/x",
      NOTIFY_STACK: "dev",
      NOTIFY_STATUS: "success",
    });
    assert.equal(badUrl.code, 1);
    assert.match(badUrl.stderr, /SLACK_WEBHOOK_URL must be an http\(s\) URL, got scheme "ftp:"/);
    assertNoSecret(badUrl);
  });

  it("parses tags given as JSON, commas or lines", async () => {
    assert.deepEqual(parseTags('["a:1","a:2"]'), ["a:1", "a:2"]);
    assert.deepEqual(parseTags("a:1, a:2\na:3"), ["a:1", "a:2", "a:3"]);
    assert.deepEqual(parseTags(undefined), []);
    assert.throws(() => parseTags("[1,2]"), /NOTIFY_TAGS must be a JSON array of strings/);
    assert.throws(() => parseTags("[oops"), /NOTIFY_TAGS looks like JSON but does not parse/);
  });

  it("marks a cancelled deploy as a warning", async () => {
    const payload = buildPayload({ stack: "prod", status: "cancelled", tags: [] });
    assert.match(payload.text, /^:warning: image-factory deploy to prod was cancelled/);
    assert.equal(
      payload.blocks.some((b) => b.type === "context"),
      false,
    );
  });
});
