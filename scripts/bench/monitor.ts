// The machine a bench ran on and what else ran meanwhile: the bench shares a 2-core machine with
// other engineers' work, so every run records the load and the foreign processes it saw.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseProcStat } from "./cpuProfile";

export interface Machine {
  nproc: number;
  memoryGiB: number;
  cpuModel: string;
  kernel: string;
}

export function machine(): Machine {
  return {
    nproc: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    kernel: os.release(),
  };
}

/** CPU time the whole machine spent busy (user, nice, system, irq, softirq; not idle, iowait or
 *  steal) since boot, in seconds, from /proc/stat's first line. Machine-wide on purpose: the
 *  factory's work runs in buildkitd, the registry and the engine's plugins, not only in the bench's
 *  children. `clockTicks`: the kernel's USER_HZ (100 on Linux, whatever the kernel's own HZ). */
export function cpuBusySeconds(procStat: string, clockTicks = 100): number {
  const line = procStat.split("\n").find((l) => /^cpu\s/.test(l));
  if (line === undefined) throw new Error("/proc/stat: no aggregate 'cpu' line");
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 7 || f.some((n) => !Number.isFinite(n)))
    throw new Error(`/proc/stat: unreadable 'cpu' line: ${line}`);
  const [user, nice, system, , , irq, softirq] = f;
  return (user + nice + system + irq + softirq) / clockTicks;
}

/** The machine's busy CPU seconds so far (cpuBusySeconds of this machine's /proc/stat). */
export function machineCpuSeconds(): number {
  return cpuBusySeconds(fs.readFileSync("/proc/stat", "utf8"));
}

/** The load over a whole run and the foreign work seen (process name → samples it was in). */
export interface LoadSummary {
  loadStart: number[];
  load1Max: number;
  load1Mean: number;
  overlapped: boolean;
  foreignSamples: number;
  foreign: Record<string, number>;
}

/** Samples the load and looks for other people's work (pulumi, mocha, scanners, builds) that is
 *  not a descendant of this process, every few seconds. `ownDaemons`: processes whose descendants
 *  are the bench's own work too (its buildkitd runs the builds' steps, e.g. an emulated `npm ci`). */
export class LoadMonitor {
  private timer?: NodeJS.Timeout;
  readonly samples: Array<{ at: string; load1: number; foreign: string[] }> = [];

  constructor(private readonly ownDaemons: () => Array<number | undefined> = () => []) {}

  start(): void {
    const sample = (): void => {
      this.samples.push({
        at: new Date().toISOString(),
        load1: os.loadavg()[0],
        foreign: foreignWork(this.ownDaemons().filter((p): p is number => p !== undefined)),
      });
    };
    sample();
    this.timer = setInterval(sample, 10_000);
    this.timer.unref();
  }

  stop(): LoadSummary {
    if (this.timer !== undefined) clearInterval(this.timer);
    const loads = this.samples.map((s) => s.load1);
    const foreign: Record<string, number> = {};
    for (const s of this.samples)
      for (const f of new Set(s.foreign)) foreign[f] = (foreign[f] ?? 0) + 1;
    const foreignSamples = this.samples.filter((s) => s.foreign.length > 0).length;
    return {
      loadStart: this.samples.length > 0 ? [this.samples[0].load1] : [],
      load1Max: Math.max(0, ...loads),
      load1Mean: loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length),
      overlapped: foreignSamples > 0,
      foreignSamples,
      foreign,
    };
  }
}

const FOREIGN =
  /\b(pulumi|mocha|buildctl|syft|trivy|dive|docker-buildx|tsc|c8|cosign)\b|npm (ci|test|run)/;

/** One process as /proc shows it. */
export interface ProcessEntry {
  ppid: number;
  cmd: string;
}

function processTable(): Map<number, ProcessEntry> {
  const table = new Map<number, ProcessEntry>();
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const { ppid } = parseProcStat(Number(e), fs.readFileSync(`/proc/${e}/stat`, "utf8"));
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      table.set(Number(e), { ppid, cmd });
    } catch {
      // the process ended meanwhile
    }
  }
  return table;
}

function foreignWork(ownDaemons: number[]): string[] {
  return foreignOf(processTable(), process.pid, ownDaemons);
}

/** The work in `table` that is neither `self`, what started it (the npm/timeout that launched the
 *  bench), nor a descendant of `self` or of one of `ownDaemons`: short command names. */
export function foreignOf(
  table: Map<number, ProcessEntry>,
  self: number,
  ownDaemons: number[],
): string[] {
  const parentOf = (pid: number): number => table.get(pid)?.ppid ?? 0;
  const ancestors = new Set<number>();
  for (let p = self, i = 0; p > 1 && i < 64; p = parentOf(p), i++) ancestors.add(p);
  const roots = new Set([self, ...ownDaemons]);
  const mine = (pid: number): boolean => {
    if (ancestors.has(pid)) return true;
    for (let p = pid, i = 0; p > 1 && i < 64; p = parentOf(p), i++) if (roots.has(p)) return true;
    return false;
  };
  const out: string[] = [];
  for (const [pid, { cmd: c }] of table) {
    if (
      c === "" ||
      mine(pid) ||
      !FOREIGN.test(c) ||
      /buildkitd|dockerd|containerd|distribution-registry/.test(c)
    )
      continue;
    out.push(
      c
        .split(" ")
        .slice(0, 3)
        .map((w) => path.basename(w))
        .join(" ")
        .slice(0, 60),
    );
  }
  return out;
}
