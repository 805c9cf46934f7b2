// The factory's phases from a Pulumi event log (`pulumi up --event-log`): which resources ran,
// when, and whether they did work. Pure: the lines come from scripts/bench/eventLog.ts.
import { FACTORY_SEGMENTS, type FactorySegment, type Timings } from "./model";

export interface EngineEventLine {
  /** When the bench read the line (ms since the epoch); Pulumi's own `timestamp` is whole seconds. */
  at: number;
  event: {
    sequence?: number;
    timestamp?: number;
    resourcePreEvent?: { metadata?: { op?: string; urn?: string; type?: string } };
    resOutputsEvent?: { metadata?: { op?: string; urn?: string; type?: string } };
    resOpFailedEvent?: { metadata?: { op?: string; urn?: string; type?: string } };
    summaryEvent?: unknown;
  };
}

export interface ResourceSpan {
  urn: string;
  type: string;
  name: string;
  op: string;
  start: number;
  end?: number;
}

/** Resource spans (pre event → outputs event) from the event log, in start order. */
export function resourceSpans(lines: EngineEventLine[]): ResourceSpan[] {
  const byUrn = new Map<string, ResourceSpan>();
  for (const { at, event } of lines) {
    const pre = event.resourcePreEvent?.metadata;
    if (pre?.urn !== undefined && !byUrn.has(pre.urn)) {
      byUrn.set(pre.urn, {
        urn: pre.urn,
        type: pre.type ?? "",
        name: pre.urn.split("::").pop() ?? pre.urn,
        op: pre.op ?? "",
        start: at,
      });
    }
    const out = event.resOutputsEvent?.metadata ?? event.resOpFailedEvent?.metadata;
    const span = out?.urn !== undefined ? byUrn.get(out.urn) : undefined;
    if (span !== undefined && span.end === undefined) span.end = at;
  }
  return [...byUrn.values()].sort((a, b) => a.start - b.start);
}

export const IMAGE_TYPE = "docker-build:index:Image";
export const INDEX_TYPE = "docker-build:index:Index";
export const EVIDENCE_TYPE = "pulumi-nodejs:dynamic/supplychain:Evidence";
export const SCANS_TYPE = "pulumi-nodejs:dynamic/supplychain:Scans";
export const TAGS_TYPE = "pulumi-nodejs:dynamic/publication:Tags";
const DID_WORK = new Set(["create", "update", "replace", "create-replacement"]);

export interface FactoryTimeline {
  segments: Record<FactorySegment, number>;
  detail: Timings;
  builds: number;
  scans: number;
}

/**
 * Splits one factory run (from `startMs` to `endMs`, the wall time of scripts/local.sh up) into
 * sequential segments at these boundaries, each clamped to be no earlier than the one before:
 * the first registration of a resource other than the stack and providers (engine start), the end
 * of the last Image (builds), the end of the Scans and the Evidence (evidence: what of them did not
 * overlap the builds), the end of the Index and Tags (publish), the end of the command (finish).
 * Detail: each Image's, the Scans', the Evidence's, the Index's and the Tags' own durations.
 * `scans`: the Scans steps that ran (the Evidence step judges them).
 */
export function factoryTimeline(
  lines: EngineEventLine[],
  startMs: number,
  endMs: number,
): FactoryTimeline {
  const spans = resourceSpans(lines);
  const isWork = (s: ResourceSpan): boolean =>
    s.type !== "pulumi:pulumi:Stack" && !s.type.startsWith("pulumi:providers:");
  const images = spans.filter((s) => s.type === IMAGE_TYPE);
  const evidence = spans.filter((s) => s.type === EVIDENCE_TYPE || s.type === SCANS_TYPE);
  const publish = spans.filter((s) => s.type === INDEX_TYPE || s.type === TAGS_TYPE);
  const lastEnd = (xs: ResourceSpan[]): number | undefined =>
    xs.length === 0 ? undefined : Math.max(...xs.map((s) => s.end ?? s.start));
  const firstWork = spans.find(isWork)?.start;
  const bounds = [
    startMs,
    firstWork ?? startMs,
    lastEnd(images),
    lastEnd(evidence),
    lastEnd(publish),
    endMs,
  ];
  const clamped: number[] = [];
  for (const b of bounds) {
    const prev = clamped.length === 0 ? startMs : clamped[clamped.length - 1];
    clamped.push(Math.min(endMs, Math.max(prev, b ?? prev)));
  }
  const segments = Object.fromEntries(
    FACTORY_SEGMENTS.map((name, i) => [name, (clamped[i + 1] - clamped[i]) / 1000]),
  ) as Record<FactorySegment, number>;
  const detail: Timings = {};
  for (const s of [...images, ...evidence, ...publish]) {
    if (s.end !== undefined)
      detail[`${s.type.split(":").pop()} ${s.name}`] = (s.end - s.start) / 1000;
  }
  return {
    segments,
    detail,
    builds: images.filter((s) => DID_WORK.has(s.op)).length,
    scans: evidence.filter((s) => s.type === SCANS_TYPE && DID_WORK.has(s.op)).length,
  };
}

/** The publish step's own signing time, from the Tags resource's outputs in the event log, when
 *  that resource ran in this update (a `same` step carries the previous run's report). */
export function signingSeconds(lines: EngineEventLine[]): number | undefined {
  for (const l of lines) {
    const m = l.event.resOutputsEvent?.metadata as
      | { type?: string; op?: string; new?: { outputs?: { signingReport?: { seconds?: number } } } }
      | undefined;
    if (m?.type !== TAGS_TYPE || m.op === "same") continue;
    const s = m.new?.outputs?.signingReport?.seconds;
    if (typeof s === "number") return s;
  }
  return undefined;
}

/** The detail entry the Tags resource's signing time is shown under. */
export const SIGNING_DETAIL = "publish signing (in Tags)";

/** Sets (or, when the Tags resource did not run, removes) the signing figure of a run's detail. */
export function recordSigning(detail: Timings, lines: EngineEventLine[]): void {
  const signing = signingSeconds(lines);
  if (signing === undefined) delete detail[SIGNING_DETAIL];
  else detail[SIGNING_DETAIL] = signing;
}
