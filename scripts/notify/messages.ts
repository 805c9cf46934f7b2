// The deploy message as data: the facts every channel carries, and the Slack and Teams payloads
// built from them. Pure (no environment, no network): scripts/notify.ts reads the environment and
// posts what these return.
import { checksWithStatus } from "../../review/gates";
import { isUnavailable, type GateSummary, type Unavailable } from "../../review/model";

export type DeployStatus = "success" | "failure" | "cancelled";

export interface Notification {
  stack: string;
  status: DeployStatus;
  digest?: string;
  image?: string;
  tags: string[];
  /** The deploy's gate results; unavailable when NOTIFY_GATES was given but unreadable. */
  gates?: GateSummary | Unavailable;
  runUrl?: string;
  reviewUrl?: string;
}

export interface SlackPayload {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

export interface TeamsPayload {
  type: "message";
  attachments: Array<{
    contentType: "application/vnd.microsoft.card.adaptive";
    content: {
      $schema: "http://adaptivecards.io/schemas/adaptive-card.json";
      type: "AdaptiveCard";
      version: "1.4";
      body: Array<Record<string, unknown>>;
      actions?: Array<Record<string, unknown>>;
    };
  }>;
}

/** One fact both formats show: Slack as a field or section, Teams as a FactSet row. */
export interface Fact {
  title: string;
  value: string;
}

/** Slack limits a text object to 3000 characters; Teams cards stay small the same way. */
export const MAX_VALUE = 2900;

function verb(status: DeployStatus): string {
  return status === "success" ? "succeeded" : status === "failure" ? "failed" : "was cancelled";
}

function cut(value: string): string {
  return value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE)}…` : value;
}

function measuredText(c: GateSummary["checks"][number]): string {
  if (c.measured === undefined || c.limit === undefined) return c.name;
  const unit = c.unit === undefined || c.unit === "" ? "" : ` ${c.unit}`;
  return `${c.name} (measured ${c.measured}${unit}, limit ${c.limit}${unit})`;
}

/** The gate facts: overall result, then the failed, waived and not-run checks by name. */
export function gateFacts(gates: GateSummary | Unavailable | undefined): Fact[] {
  if (gates === undefined) return [];
  if (isUnavailable(gates))
    return [{ title: "Gates", value: `unavailable (${gates.unavailable})` }];
  const failed = gates.checks.filter((c) => c.status === "failed");
  const waived = Object.entries(gates.waived ?? {});
  const counts = (["passed", "failed", "waived", "not-run"] as const)
    .map((status) => [status, checksWithStatus(gates, status).length] as const)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status === "not-run" ? "not run" : status}`);
  const facts: Fact[] = [
    {
      title: "Gates",
      value: `${gates.passed ? "passed" : "failed"}${counts.length > 0 ? ` (${counts.join(", ")})` : ""}`,
    },
  ];
  if (failed.length > 0)
    facts.push({ title: "Failed checks", value: failed.map(measuredText).join(", ") });
  if (waived.length > 0) {
    facts.push({
      title: "Waived checks",
      value: waived
        .map(([name, reason]) => (reason === "" ? name : `${name} (${reason})`))
        .join(", "),
    });
  }
  if (gates.notRun.length > 0) facts.push({ title: "Not run", value: gates.notRun.join(", ") });
  return facts;
}

/** Every fact of the notification, in display order; both formats show exactly these. */
export function notificationFacts(n: Notification): Fact[] {
  const facts: Fact[] = [
    { title: "Stack", value: n.stack },
    { title: "Status", value: n.status },
  ];
  if (n.image !== undefined) facts.push({ title: "Image", value: n.image });
  facts.push({ title: "Digest", value: n.digest ?? "n/a" });
  facts.push({ title: "Tags", value: cut(n.tags.length > 0 ? n.tags.join(", ") : "none") });
  facts.push(...gateFacts(n.gates).map((f) => ({ ...f, value: cut(f.value) })));
  return facts;
}

function links(n: Notification): Array<{ title: string; url: string }> {
  const out: Array<{ title: string; url: string }> = [];
  if (n.runUrl !== undefined) out.push({ title: "Workflow run", url: n.runUrl });
  if (n.reviewUrl !== undefined) out.push({ title: "Review", url: n.reviewUrl });
  return out;
}

/** Slack mrkdwn: `&`, `<` and `>` are control characters. */
function mrkdwn(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The Slack message: `text` is the fallback shown in notifications, `blocks` the rich layout. */
export function buildSlackPayload(n: Notification): SlackPayload {
  const icon =
    n.status === "success" ? ":white_check_mark:" : n.status === "failure" ? ":x:" : ":warning:";
  const facts = notificationFacts(n);
  const value = (title: string): string | undefined => facts.find((f) => f.title === title)?.value;
  const gates = gateFacts(n.gates);
  const textParts = [
    `digest: ${n.digest ?? "n/a"}`,
    `tags: ${n.tags.length > 0 ? n.tags.join(", ") : "none"}`,
    ...gates.map((f) => `${f.title.toLowerCase()}: ${f.value}`),
    `run: ${n.runUrl ?? "n/a"}`,
  ];
  if (n.reviewUrl !== undefined) textParts.push(`review: ${n.reviewUrl}`);
  const text = `${icon} image-factory deploy to ${n.stack} ${verb(n.status)}. ${textParts.join("; ")}`;
  const fields = [
    { type: "mrkdwn", text: `*Stack*\n${mrkdwn(n.stack)}` },
    { type: "mrkdwn", text: `*Status*\n${n.status}` },
    { type: "mrkdwn", text: `*Digest*\n\`${mrkdwn(n.digest ?? "n/a")}\`` },
  ];
  if (n.image !== undefined) fields.push({ type: "mrkdwn", text: `*Image*\n${mrkdwn(n.image)}` });
  const blocks: Array<Record<string, unknown>> = [
    {
      type: "section",
      text: {
        type: "mrkdwn",
        text: `${icon} *image-factory* deploy to *${mrkdwn(n.stack)}* ${verb(n.status)}`,
      },
    },
    { type: "section", fields },
    { type: "section", text: { type: "mrkdwn", text: `*Tags*\n${mrkdwn(value("Tags") ?? "")}` } },
  ];
  if (gates.length > 0) {
    blocks.push({
      type: "section",
      text: {
        type: "mrkdwn",
        text: facts
          .filter((f) => gates.some((g) => g.title === f.title))
          .map((f) => `*${f.title}*\n${mrkdwn(f.value)}`)
          .join("\n"),
      },
    });
  }
  const linkList = links(n);
  if (linkList.length > 0) {
    blocks.push({
      type: "context",
      elements: linkList.map((l) => ({ type: "mrkdwn", text: `<${l.url}|${l.title}>` })),
    });
  }
  return { text, blocks };
}

/** The Teams workflow message: one Adaptive Card 1.4 with a headline, a FactSet holding every
 *  fact, and an Action.OpenUrl per link. */
export function buildTeamsPayload(n: Notification): TeamsPayload {
  const icon = n.status === "success" ? "✅" : n.status === "failure" ? "❌" : "⚠️";
  const color = n.status === "success" ? "Good" : n.status === "failure" ? "Attention" : "Warning";
  const content: TeamsPayload["attachments"][number]["content"] = {
    $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
    type: "AdaptiveCard",
    version: "1.4",
    body: [
      {
        type: "TextBlock",
        text: `${icon} image-factory deploy to ${n.stack} ${verb(n.status)}`,
        weight: "Bolder",
        size: "Medium",
        color,
        wrap: true,
      },
      { type: "FactSet", facts: notificationFacts(n) },
    ],
  };
  const linkList = links(n);
  if (linkList.length > 0) {
    content.actions = linkList.map((l) => ({ type: "Action.OpenUrl", title: l.title, url: l.url }));
  }
  return {
    type: "message",
    attachments: [{ contentType: "application/vnd.microsoft.card.adaptive", content }],
  };
}

/** Removes the URL and its secret parts (path, query values) from a text the server sent back. */
