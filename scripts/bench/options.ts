// `npm run bench` flags: one table gives parseArgs its options and `--help` its text, so the two
// cannot drift apart; `options()` turns the values into checked settings.
import * as path from "path";
import { parseArgs } from "util";
import { PLATFORMS, REPO_ROOT } from "../../test/e2e/lib";
import { SCENARIOS, type PathName, type Scenario } from "./model";

export interface Options {
  from?: string;
  paths: PathName[];
  repeat: number;
  scenarios: Scenario[];
  platforms: string[];
  port: number;
  out: string;
  emulation: boolean;
  readme: boolean;
  keep: boolean;
  dry: boolean;
  skipBootstrap: boolean;
}

/** parseArgs reads only `type`; `value` and `text` are for `--help`. */
const FLAGS = {
  repeat: { type: "string", value: "N", text: "rounds per path and scenario (3; --dry: 1)" },
  scenarios: {
    type: "string",
    value: "LIST",
    text: `from ${SCENARIOS.join(",")}, starting with cold (--dry: cold,noop)`,
  },
  platforms: {
    type: "string",
    value: "LIST",
    text: `from ${PLATFORMS.join(",")} (all; --dry: linux/amd64)`,
  },
  paths: { type: "string", value: "LIST", text: "factory,peer or one of them (both)" },
  port: { type: "string", value: "PORT", text: "the bench's own buildkitd, not 1234 (1235)" },
  out: { type: "string", value: "DIR", text: "where the raw JSON goes (.local/bench)" },
  from: { type: "string", value: "JSON", text: "render a recorded run (bench-<id>.json) again" },
  "no-emulation": { type: "boolean", text: "skip emulated vs native" },
  "no-readme": { type: "boolean", text: "leave README.md and docs/bench.svg alone" },
  keep: { type: "boolean", text: "keep the stacks, daemon state and app copies" },
  "skip-bootstrap": { type: "boolean", text: "do not run scripts/bootstrap.sh first" },
  dry: {
    type: "boolean",
    text: "smoke run: one round, linux/amd64, cold + no-op, no emulation or README, goals not judged",
  },
  help: { type: "boolean", text: "print this and exit" },
} as const;

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) => {
    const flag = `--${name}${"value" in f ? ` ${f.value}` : ""}`;
    return `  ${flag.padEnd(22)} ${f.text}`;
  });
  return ["Usage: npm run bench -- [flags]", "", ...lines, ""].join("\n");
}

/** A comma-separated flag's items, each one of `allowed`. */
function listOf<T extends string>(
  flag: string,
  value: string,
  allowed: readonly T[],
  what = `one of ${allowed.join(", ")}`,
): T[] {
  const items = value.split(",").filter((s) => s !== "");
  const wrong = items.find((s) => !(allowed as readonly string[]).includes(s));
  if (wrong !== undefined) throw new Error(`--${flag}: '${wrong}' is not ${what}`);
  return items as T[];
}

/** The checked settings, or "help" for `--help` (then nothing else is checked). */
export function options(argv: string[]): Options | "help" {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true });
  if (values.help === true) return "help";
  const dry = values.dry === true;
  const repeat = Number(values.repeat ?? (dry ? "1" : "3"));
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20)
    throw new Error(`--repeat: '${values.repeat}' is not a whole number from 1 to 20`);
  const scenarios = listOf(
    "scenarios",
    values.scenarios ?? (dry ? "cold,noop" : SCENARIOS.join(",")),
    SCENARIOS,
  );
  if (scenarios[0] !== "cold")
    throw new Error(
      `--scenarios must start with cold (each path's round starts from an empty BuildKit state), got '${scenarios.join(",")}'`,
    );
  const platforms = listOf(
    "platforms",
    values.platforms ?? (dry ? "linux/amd64" : PLATFORMS.join(",")),
    PLATFORMS,
  );
  const port = Number(values.port ?? "1235");
  if (!Number.isInteger(port) || port < 1024 || port > 65535 || port === 1234)
    throw new Error(
      `--port: '${values.port}' must be a free port from 1024 to 65535 other than 1234 (scripts/buildkit.sh's)`,
    );
  const paths = listOf(
    "paths",
    values.paths ?? "factory,peer",
    ["factory", "peer"] as const,
    "factory or peer",
  );
  return {
    from: values.from,
    paths,
    repeat,
    scenarios,
    platforms,
    port,
    out: path.resolve(values.out ?? path.join(REPO_ROOT, ".local", "bench")),
    emulation: !dry && values["no-emulation"] !== true,
    readme: !dry && values["no-readme"] !== true,
    keep: values.keep === true,
    dry,
    skipBootstrap: values["skip-bootstrap"] === true,
  };
}
