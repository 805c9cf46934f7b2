// Where a run's CPU went, by component: every process's CPU ticks read from /proc ten times a
// second, and each process's share is what it gained inside the run. Approximate on purpose: the
// last < 0.1 s of a process that exits between two samples is not seen (the machine-wide total,
// monitor.cpuBusySeconds, is exact), which is why this is a breakdown and not the measure.
import * as fs from "fs";

/** One process as /proc/<pid>/stat shows it. `start`: its start time since boot (ticks), which
 *  tells a reused pid from the process seen before. */
export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  start: number;
  ticks: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so the fields are
 *  read after the last ')'. */
export function parseProcStat(pid: number, stat: string): ProcStat {
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`/proc/${pid}/stat: no command name in "${stat}"`);
  const f = stat
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
  // stime cutime cstime priority nice num_threads itrealvalue starttime (proc(5)).
  const n = (i: number): number => {
    const v = Number(f[i]);
    if (!Number.isFinite(v)) throw new Error(`/proc/${pid}/stat: field ${i + 3} is "${f[i]}"`);
    return v;
  };
  return {
    pid,
    ppid: n(1),
    comm: stat.slice(open + 1, close),
    start: n(19),
    ticks: n(11) + n(12),
  };
}

/** The components a run's CPU is shown by, in the table's order. */
export const COMPONENTS = [
  "build steps (in BuildKit's containers)",
  "buildkitd",
  "registry",
  "stack preparation (local.sh)",
  "Pulumi CLI (engine)",
  "program (index.ts)",
  "providers (docker-build, dynamic)",
  "evidence engine (node)",
  "syft",
  "trivy",
  "dive",
  "hadolint",
  "cosign",
  "crane",
  "docker buildx (client)",
  "bench (measuring)",
  "other",
] as const;
export type Component = (typeof COMPONENTS)[number];

/** What a process is part of: its own name and command line, or (for a build's steps) the
 *  buildkitd it runs under or the PID namespace of its own that BuildKit gives every step.
 *  `ancestors`: the command names of its parents, nearest first. */
export function componentOf(
  p: { pid: number; comm: string; cmd: string; inContainer?: boolean },
  ancestors: string[],
  self: number,
): Component {
  const { comm, cmd } = p;
  if (p.pid === self) return "bench (measuring)";
  if (comm === "buildkitd" || /^buildkit-runc|^runc$|^containerd/.test(comm)) return "buildkitd";
  if (p.inContainer === true || ancestors.includes("buildkitd"))
    return "build steps (in BuildKit's containers)";
  if (/scripts\/prepare-stack\.ts/.test(cmd)) return "stack preparation (local.sh)";
  if (comm.startsWith("distribution-re")) return "registry";
  if (comm === "pulumi" || comm.startsWith("pulumi-language")) return "Pulumi CLI (engine)";
  if (comm.startsWith("pulumi-resource") || /cmd\/dynamic-provider/.test(cmd))
    return "providers (docker-build, dynamic)";
  if (/@pulumi\/pulumi\/cmd\/run/.test(cmd)) return "program (index.ts)";
  if (/evidence\/cli\.(ts|js)/.test(cmd)) return "evidence engine (node)";
  for (const tool of ["syft", "trivy", "dive", "hadolint", "cosign", "crane"] as const)
    if (comm === tool) return tool;
  if (comm.startsWith("docker-buildx") || (comm === "docker" && /\bbuildx\b/.test(cmd)))
    return "docker buildx (client)";
  return "other";
}

interface Seen {
  component: Component;
  comm: string;
  first: number;
  last: number;
}

/** Samples every process's CPU ticks between `start` and `stop`. */
export class CpuSampler {
  private seen = new Map<string, Seen>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly intervalMs = 100,
    private readonly clockTicks = 100,
  ) {}

  start(): void {
    this.seen.clear();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), this.intervalMs);
    this.timer.unref();
  }

  /** Stops sampling; `stop` then takes one last sample. */
  pause(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** CPU seconds per component (those above zero). */
  stop(): Record<string, number> {
    this.pause();
    this.sample(false);
    const by: Record<string, number> = {};
    for (const s of this.seen.values()) {
      const d = (s.last - s.first) / this.clockTicks;
      if (d > 0) by[s.component] = (by[s.component] ?? 0) + d;
    }
    for (const k of Object.keys(by)) by[k] = Math.round(by[k] * 100) / 100;
    return by;
  }

  /** `atStart`: what each process had already used is not this run's. */
  private sample(atStart: boolean): void {
    const table = new Map<number, ProcStat>();
    for (const e of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(e)) continue;
      try {
        table.set(Number(e), parseProcStat(Number(e), fs.readFileSync(`/proc/${e}/stat`, "utf8")));
      } catch {
        // the process ended meanwhile
      }
    }
    for (const p of table.values()) {
      const key = `${p.pid}:${p.start}`;
      const s = this.seen.get(key);
      if (s !== undefined) {
        s.last = p.ticks;
        // A process's name and command line change when it execs (sh → npm ci).
        if (s.component === "other" && s.comm !== p.comm) {
          s.component = this.classify(p, table);
          s.comm = p.comm;
        }
        continue;
      }
      this.seen.set(key, {
        component: this.classify(p, table),
        comm: p.comm,
        // Born during the run: all it used is the run's.
        first: atStart ? p.ticks : 0,
        last: p.ticks,
      });
    }
  }

  private classify(p: ProcStat, table: Map<number, ProcStat>): Component {
    let cmd = "";
    try {
      cmd = fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      // the process ended meanwhile: its name is enough
    }
    const ancestors: string[] = [];
    for (let q = table.get(p.ppid), i = 0; q !== undefined && i < 64; q = table.get(q.ppid), i++)
      ancestors.push(q.comm);
    return componentOf(
      {
        pid: p.pid,
        comm: p.comm,
        cmd,
        inContainer: this.pidNamespace(p.pid) !== this.ownNamespace,
      },
      ancestors,
      process.pid,
    );
  }

  private readonly ownNamespace = this.pidNamespace(process.pid);

  private pidNamespace(pid: number): string {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/pid`);
    } catch {
      // gone, or not ours to read: taken as this namespace
      return this.ownNamespace;
    }
  }
}
