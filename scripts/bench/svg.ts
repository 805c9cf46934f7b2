// docs/bench.svg: one bar group per scenario, the factory's median round stacked by segment beside
// the peer's, with each scenario's ratio and goal under it.
import {
  FACTORY_SEGMENTS,
  FACTORY_SEGMENT_TITLES,
  PEER_SEGMENTS,
  PEER_SEGMENT_TITLES,
  type FactorySegment,
  type PeerSegment,
  type RunRecord,
  medianOf,
} from "./model";
import type { ScenarioResult } from "./judge";

const FACTORY_COLOURS: Record<FactorySegment, string> = {
  start: "#9ecae1",
  build: "#3182bd",
  evidence: "#31a354",
  publish: "#fd8d3c",
  finish: "#bdbdbd",
};
const PEER_COLOURS: Record<PeerSegment, string> = {
  build: "#636363",
  syft: "#969696",
  trivy: "#cccccc",
};

function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** One bar group per scenario: the factory's median round stacked by segment, the peer's beside. */
export function benchSvg(runs: RunRecord[], results: ScenarioResult[], caption: string): string {
  const groups = results.map((r) => ({
    result: r,
    factory: medianOf(runs, r.scenario, "factory"),
    peer: medianOf(runs, r.scenario, "peer"),
  }));
  const maxWall = Math.max(
    1,
    ...groups.flatMap((g) => [g.factory?.wallSeconds ?? 0, g.peer?.wallSeconds ?? 0]),
  );
  const step = maxWall > 200 ? 50 : maxWall > 80 ? 20 : maxWall > 40 ? 10 : 5;
  const top = Math.ceil(maxWall / step) * step;
  const W = 820;
  const H = 440;
  const left = 60;
  const right = 220;
  const plotTop = 50;
  const plotBottom = H - 70;
  const plotH = plotBottom - plotTop;
  const groupW = (W - left - right) / Math.max(1, groups.length);
  const barW = Math.min(46, groupW / 3);
  const y = (v: number): number => plotBottom - (v / top) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(
    `<text x="${left}" y="22" font-size="15" font-weight="bold">pulumi up (factory) vs the seed's buildx + Syft + Trivy pipeline (peer), wall seconds</text>`,
  );
  parts.push(`<text x="${left}" y="40" fill="#555">${esc(caption)}</text>`);
  for (let v = 0; v <= top; v += step) {
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v}</text>`,
    );
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotBottom}" stroke="#333"/>`);
  parts.push(
    `<line x1="${left}" x2="${W - right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`,
  );
  const stack = (
    x: number,
    run: RunRecord | undefined,
    order: readonly string[],
    colours: Record<string, string>,
    label: string,
  ): void => {
    if (run === undefined) return;
    let acc = 0;
    for (const seg of order) {
      const v = run.segments[seg] ?? 0;
      if (v <= 0) continue;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(acc + v).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(acc) - y(acc + v)).toFixed(1)}" fill="${colours[seg]}"><title>${esc(`${label} ${seg}: ${v.toFixed(1)} s`)}</title></rect>`,
      );
      acc += v;
    }
    parts.push(
      `<text x="${(x + barW / 2).toFixed(1)}" y="${(y(run.wallSeconds) - 4).toFixed(1)}" text-anchor="middle">${run.wallSeconds.toFixed(1)}</text>`,
    );
    parts.push(
      `<text x="${(x + barW / 2).toFixed(1)}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">${label}</text>`,
    );
  };
  groups.forEach((g, i) => {
    const gx = left + i * groupW + (groupW - 2 * barW - 8) / 2;
    stack(gx, g.factory, FACTORY_SEGMENTS, FACTORY_COLOURS, "factory");
    stack(gx + barW + 8, g.peer, PEER_SEGMENTS, PEER_COLOURS, "peer");
    const cx = left + i * groupW + groupW / 2;
    parts.push(
      `<text x="${cx.toFixed(1)}" y="${plotBottom + 32}" text-anchor="middle" font-weight="bold">${g.result.scenario}</text>`,
    );
    const verdict = `${Number.isFinite(g.result.ratio) ? g.result.ratio.toFixed(2) : "–"} (goal ≤ ${g.result.goal}${g.result.scenario === "noop" ? " of peer source" : ""})`;
    parts.push(
      `<text x="${cx.toFixed(1)}" y="${plotBottom + 48}" text-anchor="middle" fill="${g.result.met ? "#1a7f37" : "#cf222e"}">${esc(verdict)}</text>`,
    );
  });
  let ly = plotTop;
  const legend = (colour: string, text: string): void => {
    parts.push(`<rect x="${W - right + 16}" y="${ly}" width="12" height="12" fill="${colour}"/>`);
    parts.push(`<text x="${W - right + 34}" y="${ly + 10}">${esc(text)}</text>`);
    ly += 18;
  };
  parts.push(`<text x="${W - right + 16}" y="${ly - 6}" font-weight="bold">factory</text>`);
  ly += 4;
  for (const s of FACTORY_SEGMENTS) legend(FACTORY_COLOURS[s], FACTORY_SEGMENT_TITLES[s]);
  ly += 14;
  parts.push(`<text x="${W - right + 16}" y="${ly - 6}" font-weight="bold">peer</text>`);
  ly += 4;
  for (const s of PEER_SEGMENTS) legend(PEER_COLOURS[s], PEER_SEGMENT_TITLES[s]);
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}
