// Reading `pulumi up --event-log` files: followed while the update runs (each line stamped with the
// time it was read, finer than Pulumi's whole-second timestamps), or read whole after the fact.
import * as fs from "fs";
import type { EngineEventLine } from "./timeline";

/** The non-empty lines, parsed, each stamped `at`. */
function parseLines(lines: string[], at: number): EngineEventLine[] {
  return lines
    .filter((l) => l.trim() !== "")
    .map((l) => ({ at, event: JSON.parse(l) as EngineEventLine["event"] }));
}

/** A finished event log; its lines carry no read time (`at` 0). */
export function readEventLog(file: string): EngineEventLine[] {
  return parseLines(fs.readFileSync(file, "utf8").split("\n"), 0);
}

/** Follows a growing JSON-lines file, stamping each line with the time it was read. */
export class EventLogWatcher {
  readonly lines: EngineEventLine[] = [];
  private offset = 0;
  private rest = "";
  private timer?: NodeJS.Timeout;

  constructor(private readonly file: string) {}

  start(): void {
    this.timer = setInterval(() => this.poll(), 100);
  }

  poll(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, "r");
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const parts = (this.rest + buf.toString("utf8")).split("\n");
      this.rest = parts.pop() ?? "";
      this.lines.push(...parseLines(parts, Date.now()));
    } finally {
      fs.closeSync(fd);
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.poll();
  }
}
