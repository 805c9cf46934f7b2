// Deploy notification: tells Slack and/or Microsoft Teams about one stack's deploy. Which channels
// get it depends on which webhook secrets are set: SLACK_WEBHOOK_URL (a Slack-compatible incoming
// webhook, `{ text, blocks }`), TEAMS_WEBHOOK_URL (a Teams *workflow* webhook, the Power Automate
// trigger "When a Teams webhook request is received", given a message with one Adaptive Card);
// both set → both, none set → a log line. Both messages carry the same facts: stack, status,
// image, digest, the tags moved, the gate summary (failed, waived and not-run checks by name) and
// links to the workflow run and the review.
//
// The workflows run it in an `if: always()` step with everything passed through environment
// variables (never interpolated into the shell script), so a tag or branch name cannot inject
// commands. A webhook URL is a credential (the token is in its path or query): it is never
// printed, not even in errors. A notification that cannot be delivered (HTTP error, connection
// refused, timeout) is a warning and the exit code stays 0: it never turns a deploy red.
//
// Environment:
//   SLACK_WEBHOOK_URL   Slack webhook (secret); unset or empty = no Slack message
//   TEAMS_WEBHOOK_URL   Teams workflow webhook (secret); unset or empty = no Teams message
//   NOTIFY_STACK        stack name, e.g. dev (required)
//   NOTIFY_STATUS       success | failure | cancelled (GitHub's job.status) (required)
//   NOTIFY_DIGEST       manifest-list digest (optional; absent when the deploy failed early)
//   NOTIFY_IMAGE        image name, e.g. ghcr.io/acme/shop-api (optional)
//   NOTIFY_TAGS         JSON array or comma/whitespace separated list of tags (optional)
//   NOTIFY_GATES        the stack's gateResults export as JSON (optional; see review/gates.ts)
//   NOTIFY_RUN_URL      link to the workflow run (optional, http(s))
//   NOTIFY_REVIEW_URL   link to the review, e.g. the PR comment (optional, http(s))
//   NOTIFY_TIMEOUT_MS   request timeout per webhook. @default 10000
//   GITHUB_ACTIONS      "true" on a runner: warnings become `::warning::` annotations
// Exit codes: 0 sent, skipped or not delivered (with a warning); 2 NOTIFY_STACK or NOTIFY_STATUS
// missing or invalid (a workflow bug).
// Usage: npm run notify   (or: npx ts-node scripts/notify.ts)
import { parseGateResults } from "../review/gates";
import { isUnavailable, type GateSummary, type Unavailable } from "../review/model";
import {
  type DeployStatus,
  type Notification,
  buildSlackPayload,
  buildTeamsPayload,
} from "./notify/messages";

export * from "./notify/messages";

const STATUSES: readonly DeployStatus[] = ["success", "failure", "cancelled"];

/** Parses NOTIFY_TAGS: a JSON array (pulumi/actions hands array outputs over as JSON) or a list
 *  separated by commas or whitespace. */
export function parseTags(raw: string | undefined): string[] {
  const text = (raw ?? "").trim();
  if (text === "") return [];
  if (text.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`NOTIFY_TAGS looks like JSON but does not parse: ${text.slice(0, 200)}`);
    }
    if (!Array.isArray(parsed) || parsed.some((t) => typeof t !== "string")) {
      throw new Error(`NOTIFY_TAGS must be a JSON array of strings, got ${text.slice(0, 200)}`);
    }
    return parsed as string[];
  }
  return text.split(/[\s,]+/).filter((t) => t !== "");
}

/** Parses NOTIFY_GATES (the gateResults export as JSON): undefined when empty, `{ unavailable }`
 *  with the reason when it cannot be read. */
export function parseGates(raw: string | undefined): GateSummary | Unavailable | undefined {
  const text = (raw ?? "").trim();
  if (text === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { unavailable: "NOTIFY_GATES is not valid JSON" };
  }
  try {
    return parseGateResults(parsed, "NOTIFY_GATES");
  } catch (err) {
    return { unavailable: (err as Error).message };
  }
}

function httpUrl(name: string, raw: string | undefined, warnings: string[]): string | undefined {
  const value = (raw ?? "").trim();
  if (value === "") return undefined;
  try {
    const u = new URL(value);
    if (u.protocol === "https:" || u.protocol === "http:") return value;
  } catch {
    // reported below
  }
  warnings.push(`${name} is not an http(s) URL, left out: ${JSON.stringify(value.slice(0, 200))}`);
  return undefined;
}

/** Reads the notification from the environment. NOTIFY_STACK and NOTIFY_STATUS must be valid
 *  (errors name the variable); problems with the optional values are pushed to `warnings` and
 *  the value is left out (or, for NOTIFY_GATES, shown as unavailable). */
export function notificationFromEnv(env: NodeJS.ProcessEnv, warnings: string[] = []): Notification {
  const stack = (env.NOTIFY_STACK ?? "").trim();
  if (stack === "")
    throw new Error("NOTIFY_STACK is required (the stack that was deployed, e.g. dev)");
  const status = (env.NOTIFY_STATUS ?? "").trim().toLowerCase();
  if (!STATUSES.includes(status as DeployStatus)) {
    throw new Error(
      `NOTIFY_STATUS must be one of ${STATUSES.join(", ")}, got ${JSON.stringify(env.NOTIFY_STATUS ?? "")}`,
    );
  }
  const optional = (v: string | undefined): string | undefined =>
    v === undefined || v.trim() === "" ? undefined : v.trim();
  let tags: string[] = [];
  try {
    tags = parseTags(env.NOTIFY_TAGS);
  } catch (err) {
    warnings.push(`${(err as Error).message}; the tags are left out`);
  }
  const gates = parseGates(env.NOTIFY_GATES);
  if (isUnavailable(gates)) warnings.push(`the gate summary is left out: ${gates.unavailable}`);
  const n: Notification = { stack, status: status as DeployStatus, tags };
  const digest = optional(env.NOTIFY_DIGEST);
  if (digest !== undefined) n.digest = digest;
  const image = optional(env.NOTIFY_IMAGE);
  if (image !== undefined) n.image = image;
  if (gates !== undefined) n.gates = gates;
  const runUrl = httpUrl("NOTIFY_RUN_URL", env.NOTIFY_RUN_URL, warnings);
  if (runUrl !== undefined) n.runUrl = runUrl;
  const reviewUrl = httpUrl("NOTIFY_REVIEW_URL", env.NOTIFY_REVIEW_URL, warnings);
  if (reviewUrl !== undefined) n.reviewUrl = reviewUrl;
  return n;
}

function redact(text: string, url: URL): string {
  const secrets = [url.href, url.pathname + url.search, url.search, url.pathname];
  for (const v of url.searchParams.values()) secrets.push(v, encodeURIComponent(v));
  let out = text;
  for (const s of secrets.filter((x) => x.length >= 6).sort((a, b) => b.length - a.length)) {
    out = out.split(s).join("[redacted]");
  }
  // One line, no control characters: the answer must not forge log lines or runner commands.
  return out.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
}

/** Posts JSON to a webhook. Throws on a non-2xx answer or a network error; the messages name the
 *  variable and the host, never the URL. */
export async function postJson(
  variable: string,
  url: string,
  payload: unknown,
  timeoutMs: number,
): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${variable} is not a valid URL (value not shown: it is a credential)`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new Error(
      `${variable} must be an http(s) URL, got scheme ${JSON.stringify(parsed.protocol)} (value not shown)`,
    );
  }
  const where = `${parsed.protocol}//${parsed.hostname}`;
  let response: Response;
  try {
    response = await fetch(parsed, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "error",
    });
  } catch (err) {
    // fetch's errors can carry the request URL; only the cause's code or name is reported.
    const e = err as { name?: string; cause?: { code?: string; name?: string } };
    const reason = e.cause?.code ?? e.cause?.name ?? e.name ?? "unknown error";
    throw new Error(
      `request to ${where} failed: ${reason === "TimeoutError" ? `no answer within ${timeoutMs} ms` : reason}`,
    );
  }
  if (!response.ok) {
    const body = redact((await response.text().catch(() => "")).slice(0, 200), parsed);
    throw new Error(`${where} answered HTTP ${response.status}${body === "" ? "" : `: ${body}`}`);
  }
  // Drain the answer so the connection is released.
  await response.arrayBuffer().catch(() => undefined);
}

interface Channel {
  name: string;
  variable: string;
  build: (n: Notification) => unknown;
}

const CHANNELS: readonly Channel[] = [
  { name: "Slack", variable: "SLACK_WEBHOOK_URL", build: buildSlackPayload },
  { name: "Teams", variable: "TEAMS_WEBHOOK_URL", build: buildTeamsPayload },
];

/** A GitHub Actions `::warning::` command's message, escaped as the runner expects. */
function annotation(message: string): string {
  return message.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** The CLI: returns the exit code, writes one log line per outcome. */
export async function main(
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  logError: (line: string) => void = log,
): Promise<number> {
  const warn = (message: string): void =>
    logError(
      env.GITHUB_ACTIONS === "true"
        ? `::warning title=notify::${annotation(`notify: ${message}`)}`
        : `notify: warning: ${message}`,
    );
  const warnings: string[] = [];
  let notification: Notification;
  try {
    notification = notificationFromEnv(env, warnings);
  } catch (err) {
    logError(`notify: error: ${(err as Error).message}`);
    return 2;
  }
  const what = `the ${notification.status} notification for stack ${notification.stack}`;
  const channels = CHANNELS.filter((c) => (env[c.variable] ?? "").trim() !== "");
  if (channels.length === 0) {
    log(`notify: neither SLACK_WEBHOOK_URL nor TEAMS_WEBHOOK_URL is set; skipping ${what}`);
    return 0;
  }
  for (const w of warnings) warn(w);
  let timeoutMs = Number(env.NOTIFY_TIMEOUT_MS ?? "10000");
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    warn(
      `NOTIFY_TIMEOUT_MS must be a positive number of milliseconds, got ${JSON.stringify(env.NOTIFY_TIMEOUT_MS)}; using 10000`,
    );
    timeoutMs = 10000;
  }
  await Promise.all(
    channels.map(async (c) => {
      try {
        await postJson(
          c.variable,
          (env[c.variable] ?? "").trim(),
          c.build(notification),
          timeoutMs,
        );
      } catch (err) {
        warn(`${what} was not delivered to ${c.name} (${c.variable}): ${(err as Error).message}`);
        return;
      }
      log(
        `notify: sent ${what} to ${c.name} (digest ${notification.digest ?? "n/a"}, ${notification.tags.length} tags)`,
      );
    }),
  );
  return 0;
}

if (require.main === module) {
  main(
    process.env,
    (line) => console.log(line),
    (line) => console.error(line),
  ).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // Unexpected: still never fails the deploy, and prints no URL (messages are built above).
      console.error(`notify: warning: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 0;
    },
  );
}
