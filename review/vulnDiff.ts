// New and fixed vulnerabilities between two Trivy JSON reports (`trivy image --format json`:
// `Results[].Vulnerabilities[]` with VulnerabilityID, PkgName, InstalledVersion, FixedVersion,
// Severity; `Vulnerabilities` is absent or null for a clean target). A vulnerability is its id and
// package: one that stays while the package moves to another still-affected version is neither
// new nor fixed. The same finding in several targets (two copies of an npm package) counts once.
// Pure.
import type { Severity, VulnDiff, Vulnerability } from "./model";

const SEVERITIES: readonly Severity[] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

function byCodePoint(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

export function compareVulnerabilities(a: Vulnerability, b: Vulnerability): number {
  return (
    SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) ||
    byCodePoint(a.id, b.id) ||
    byCodePoint(a.pkgName, b.pkgName)
  );
}

/** The vulnerabilities of a Trivy JSON report, one per (id, package), sorted. Installed and
 *  fixed versions of several copies are joined with ", "; the highest severity wins. */
export function trivyVulnerabilities(report: unknown, what = "Trivy report"): Vulnerability[] {
  if (typeof report !== "object" || report === null || Array.isArray(report)) {
    throw new Error(`${what} must be a Trivy JSON object, got ${describe(report)}`);
  }
  const r = report as Record<string, unknown>;
  if (r.Results !== undefined && r.Results !== null && !Array.isArray(r.Results)) {
    throw new Error(`${what}.Results must be an array, got ${describe(r.Results)}`);
  }
  const found = new Map<string, { v: Vulnerability; installed: Set<string>; fixed: Set<string> }>();
  ((r.Results as unknown[] | null | undefined) ?? []).forEach((result, i) => {
    if (typeof result !== "object" || result === null) {
      throw new Error(`${what}.Results[${i}] must be an object, got ${describe(result)}`);
    }
    const vulns = (result as Record<string, unknown>).Vulnerabilities;
    if (vulns === undefined || vulns === null) return;
    if (!Array.isArray(vulns)) {
      throw new Error(
        `${what}.Results[${i}].Vulnerabilities must be an array, got ${describe(vulns)}`,
      );
    }
    vulns.forEach((raw, j) => {
      const v = (raw ?? {}) as Record<string, unknown>;
      const where = `${what}.Results[${i}].Vulnerabilities[${j}]`;
      if (typeof v.VulnerabilityID !== "string" || v.VulnerabilityID === "") {
        throw new Error(`${where} has no VulnerabilityID: ${describe(raw)}`);
      }
      if (typeof v.PkgName !== "string" || v.PkgName === "") {
        throw new Error(`${where} (${v.VulnerabilityID}) has no PkgName`);
      }
      const sev = typeof v.Severity === "string" ? v.Severity.toUpperCase() : "UNKNOWN";
      const severity: Severity = SEVERITIES.includes(sev as Severity)
        ? (sev as Severity)
        : "UNKNOWN";
      const key = `${v.VulnerabilityID}\u0000${v.PkgName}`;
      let entry = found.get(key);
      if (entry === undefined) {
        entry = {
          v: {
            id: v.VulnerabilityID,
            pkgName: v.PkgName,
            installedVersion: "",
            fixedVersion: "",
            severity,
          },
          installed: new Set(),
          fixed: new Set(),
        };
        found.set(key, entry);
      }
      if (SEVERITIES.indexOf(severity) < SEVERITIES.indexOf(entry.v.severity))
        entry.v.severity = severity;
      if (typeof v.InstalledVersion === "string" && v.InstalledVersion !== "")
        entry.installed.add(v.InstalledVersion);
      if (typeof v.FixedVersion === "string" && v.FixedVersion !== "")
        entry.fixed.add(v.FixedVersion);
    });
  });
  return [...found.values()]
    .map(({ v, installed, fixed }) => ({
      ...v,
      installedVersion: [...installed].sort().join(", "),
      fixedVersion: [...fixed].sort().join(", "),
    }))
    .sort(compareVulnerabilities);
}

/** New (candidate only) and fixed (current only) vulnerabilities. Without a current report
 *  (nothing ships yet) every candidate vulnerability is new. */
export function vulnDiff(current: unknown | undefined, candidate: unknown): VulnDiff {
  const before = current === undefined ? [] : trivyVulnerabilities(current, "current Trivy report");
  const after = trivyVulnerabilities(candidate, "candidate Trivy report");
  const key = (v: Vulnerability): string => `${v.id}\u0000${v.pkgName}`;
  const beforeKeys = new Set(before.map(key));
  const afterKeys = new Set(after.map(key));
  return {
    new: after.filter((v) => !beforeKeys.has(key(v))),
    fixed: before.filter((v) => !afterKeys.has(key(v))),
  };
}

/** Counts per severity, highest first, e.g. `1 critical, 2 high`; "" for none. */
export function severityCounts(vulns: Vulnerability[]): string {
  return SEVERITIES.map((s) => [s, vulns.filter((v) => v.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s.toLowerCase()}`)
    .join(", ");
}
