// Deploy notification: posts a Slack-compatible message (`{ text, blocks }`) about one stack's
// deploy to the webhook in SLACK_WEBHOOK_URL. The workflows run it in an `if: always()` step with
// everything passed through environment variables (never interpolated into the shell script), so
// a tag or branch name cannot inject commands. The webhook URL is a credential (the token is its
// path): it is never printed, not even in errors.
//
// Environment:
//   SLACK_WEBHOOK_URL   webhook (secret); unset or empty = skip with a log line, exit 0
//   NOTIFY_STACK        stack name, e.g. dev (required)
//   NOTIFY_STATUS       success | failure | cancelled (GitHub's job.status)
//   NOTIFY_DIGEST       manifest-list digest (optional; absent when the deploy failed early)
//   NOTIFY_IMAGE        image name, e.g. ghcr.io/acme/shop-api (optional)
//   NOTIFY_TAGS         JSON array or comma/whitespace separated list of tags (optional)
//   NOTIFY_RUN_URL      link to the workflow run (optional)
//   NOTIFY_TIMEOUT_MS   request timeout. @default 10000
// Usage: npm run notify   (or: npx ts-node scripts/notify.ts)

export type DeployStatus = "success" | "failure" | "cancelled";

export interface Notification {
  stack: string;
  status: DeployStatus;
  digest?: string;
  image?: string;
  tags: string[];
  runUrl?: string;
}

export interface SlackPayload {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

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

/** Reads and checks the notification from the environment; errors name the variable. */
export function notificationFromEnv(env: NodeJS.ProcessEnv): Notification {
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
  return {
    stack,
    status: status as DeployStatus,
    digest: optional(env.NOTIFY_DIGEST),
    image: optional(env.NOTIFY_IMAGE),
    tags: parseTags(env.NOTIFY_TAGS),
    runUrl: optional(env.NOTIFY_RUN_URL),
  };
}

/** The Slack message: `text` is the fallback shown in notifications, `blocks` the rich layout. */
export function buildPayload(n: Notification): SlackPayload {
  const icon =
    n.status === "success" ? ":white_check_mark:" : n.status === "failure" ? ":x:" : ":warning:";
  const verb =
    n.status === "success" ? "succeeded" : n.status === "failure" ? "failed" : "was cancelled";
  const digest = n.digest ?? "n/a";
  const tags = n.tags.length > 0 ? n.tags.join(", ") : "none";
  const run = n.runUrl ?? "n/a";
  const text = `${icon} image-factory deploy to ${n.stack} ${verb}. digest: ${digest}; tags: ${tags}; run: ${run}`;
  const fields = [
    { type: "mrkdwn", text: `*Stack*\n${n.stack}` },
    { type: "mrkdwn", text: `*Status*\n${n.status}` },
    { type: "mrkdwn", text: `*Digest*\n\`${digest}\`` },
  ];
  if (n.image !== undefined) fields.push({ type: "mrkdwn", text: `*Image*\n${n.image}` });
  const blocks: Array<Record<string, unknown>> = [
    {
      type: "section",
      text: { type: "mrkdwn", text: `${icon} *image-factory* deploy to *${n.stack}* ${verb}` },
    },
    { type: "section", fields },
    // Slack limits a text object to 3000 characters; a long tag list is cut, the fallback keeps it all.
    {
      type: "section",
      text: {
        type: "mrkdwn",
        text: `*Tags*\n${tags.length > 2900 ? `${tags.slice(0, 2900)}…` : tags}`,
      },
    },
  ];
  if (n.runUrl !== undefined) {
    blocks.push({
      type: "context",
      elements: [{ type: "mrkdwn", text: `<${n.runUrl}|Workflow run>` }],
    });
  }
  return { text, blocks };
}

/** Posts the payload. Throws on a non-2xx answer or a network error, without the URL in the message. */
export async function postPayload(
  url: string,
  payload: SlackPayload,
  timeoutMs: number,
): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error("SLACK_WEBHOOK_URL is not a valid URL (value not shown: it is a credential)");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new Error(
      `SLACK_WEBHOOK_URL must be an http(s) URL, got scheme ${JSON.stringify(parsed.protocol)} (value not shown)`,
    );
  }
  let response: Response;
  try {
    response = await fetch(parsed, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    // fetch's errors can carry the request URL; only the cause's code or name is reported.
    const e = err as { name?: string; cause?: { code?: string; name?: string } };
    const reason = e.cause?.code ?? e.cause?.name ?? e.name ?? "unknown error";
    throw new Error(
      `webhook request to ${parsed.protocol}//${parsed.hostname} failed: ${reason === "TimeoutError" ? `no answer within ${timeoutMs} ms` : reason}`,
    );
  }
  if (!response.ok) {
    const body = (await response.text().catch(() => "")).slice(0, 200);
    throw new Error(
      `webhook at ${parsed.protocol}//${parsed.hostname} answered HTTP ${response.status}${body === "" ? "" : `: ${body}`}`,
    );
  }
}

/** The CLI: returns the exit code, writes one log line per outcome. */
export async function main(
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  logError: (line: string) => void = log,
): Promise<number> {
  let notification: Notification;
  try {
    notification = notificationFromEnv(env);
  } catch (err) {
    logError(`notify: error: ${(err as Error).message}`);
    return 2;
  }
  const url = (env.SLACK_WEBHOOK_URL ?? "").trim();
  if (url === "") {
    log(
      `notify: SLACK_WEBHOOK_URL is not set; skipping the ${notification.status} notification for stack ${notification.stack}`,
    );
    return 0;
  }
  const timeoutMs = Number(env.NOTIFY_TIMEOUT_MS ?? "10000");
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    logError(
      `notify: error: NOTIFY_TIMEOUT_MS must be a positive number of milliseconds, got ${JSON.stringify(env.NOTIFY_TIMEOUT_MS)}`,
    );
    return 2;
  }
  try {
    await postPayload(url, buildPayload(notification), timeoutMs);
  } catch (err) {
    logError(`notify: error: ${(err as Error).message}`);
    return 1;
  }
  log(
    `notify: sent the ${notification.status} notification for stack ${notification.stack} (digest ${notification.digest ?? "n/a"}, ${notification.tags.length} tags)`,
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
      console.error(`notify: error: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
