// `npm run bench`: the factory's real path (`pulumi up` through scripts/local.sh) against the seed's
// hand-written pipeline doing the same build, side by side, in one process, on the same BuildKit
// daemon, registry and Dockerfile.
//
//   factory  scripts/local.sh up on a fresh stack of its own (own IF_LOCAL_DIR/IF_STACK, repository
//            image-factory/bench-<id>-r<round>), with `--event-log` for its phases and
//            .local/evidence/<stack>/gate-results.json for the evidence tools' own timings
//   peer     one `docker buildx build --platform <all> --push` with a registry cache
//            (<repo>-seedcache, mode=max), then Syft SPDX and Trivy secret/misconfig per platform,
//            one after another as a CI job runs them
//
// Both use a SECOND buildkitd that scripts/buildkit.sh starts for the bench (IF_BUILDKIT_PORT=1235 by
// default, IF_BUILDKIT_DIR under .local/bench/<id>/: the hosts' rendered config, mutual TLS with
// certificates the script makes there, its own state root) through a buildx remote builder of its
// own (image-factory-bench). Scenarios, per
// round and per path (the path order alternates between rounds):
//   cold    a fresh buildkitd state directory and fresh repositories (registry caches empty)
//   source  one line of app/src changed in the path's copy of app/
//   deps    pino (the only production dependency) bumped one patch level in package.json + lock
//   noop    nothing changed (the factory must build nothing and scan nothing)
// Each path runs its four scenarios on its own fresh daemon state, so neither reuses the other's
// cache. Goals (median ratio factory/peer): cold ≤ 1.1, source ≤ 0.5, deps ≤ 0.7; no-op ≤ 0.3 of
// the peer's warm source run with 0 builds and 0 scans. Also measured: emulated vs native (the
// deps stage's npm ci as app/Dockerfile runs it, on amd64 for the target, and moved onto the
// target, under QEMU for arm) and each tool's cold bootstrap (build-seconds files).
//
// Output: Markdown on stdout, raw JSON in .local/bench/, docs/bench.svg and README.md's
// <!-- bench:start --> … <!-- bench:end --> and <!-- tools:start --> … <!-- tools:end --> blocks.
// Exit 1 when a goal is not met, 2 when the bench could not run.
//
// Usage: npm run bench -- [--repeat 3] [--scenarios cold,source,deps,noop]
//          [--platforms linux/amd64,linux/arm64,linux/arm/v7] [--port 1235] [--out .local/bench (JSON)]
//          [--no-emulation] [--no-readme] [--keep] [--skip-bootstrap] [--paths factory,peer]
//        npm run bench -- --from .local/bench/bench-<id>.json   render a recorded run again
//        npm run bench -- --dry   one round, linux/amd64 only, cold + no-op, no emulation, no README
//                                 or docs/bench.svg, goals not judged (test/e2e/bench.e2e.test.ts)
//        npm run bench -- --help  every flag
//
// scripts/bench/: options.ts (flags), scenarios.ts, round.ts, factory.ts (+ eventLog.ts,
// timeline.ts), peer.ts, daemon.ts, emulation.ts, tools.ts, monitor.ts, and the report:
// model.ts, judge.ts, tables.ts, svg.ts, readme.ts, render.ts, rerender.ts.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  REPO_ROOT,
  bootstrapOnce,
  cacheDir,
  copyApp,
  headSha,
  requireLocalStackTools,
  runOk,
  toolPath,
} from "../test/e2e/lib";
import { BenchDaemon } from "./bench/daemon";
import { emulation } from "./bench/emulation";
import type { FactoryPath } from "./bench/factory";
import type { RunRecord } from "./bench/model";
import { judge, verdicts } from "./bench/judge";
import { say } from "./bench/log";
import { LoadMonitor, machine } from "./bench/monitor";
import { type Options, options, usage } from "./bench/options";
import { peerDockerConfig } from "./bench/peer";
import { render } from "./bench/render";
import { rerender } from "./bench/rerender";
import { type Bench, runRounds } from "./bench/round";
import { BASE_PINO, BUMPED_PINO, manifestsWithPino } from "./bench/scenarios";
import type { EmulationResult } from "./bench/tables";
import { toolBuilds } from "./bench/tools";

async function main(): Promise<number> {
  const opt = options(process.argv.slice(2));
  if (opt === "help") {
    process.stdout.write(usage());
    return 0;
  }
  if (opt.from !== undefined) return rerender(opt.from, opt);
  // `pulumi up --event-log` is one of the CLI's debug flags, shown only with this set.
  process.env.PULUMI_DEBUG_COMMANDS = "true";
  const id = `${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${Date.now().toString(36).slice(-5)}`;
  // Inside the repository: the factory refuses a build context (image-factory:appPath) outside it.
  const benchDir = path.join(REPO_ROOT, ".local", "bench", id);
  fs.mkdirSync(benchDir, { recursive: true });
  fs.mkdirSync(opt.out, { recursive: true });
  const daemon = new BenchDaemon(opt.port, path.join(benchDir, "buildkit"));
  const monitor = new LoadMonitor(() => [daemon.pid()]);
  monitor.start();
  const loadAtStart = os.loadavg();
  say(
    `bench ${id}: ${opt.repeat} round(s), scenarios ${opt.scenarios.join(",")}, platforms ${opt.platforms.join(",")}; load ${loadAtStart.map((l) => l.toFixed(2)).join(" ")}; work in ${benchDir}`,
  );

  if (!opt.skipBootstrap) {
    say("bootstrap (scripts/bootstrap.sh, idempotent)");
    await bootstrapOnce();
  }
  requireLocalStackTools();
  for (const t of ["syft", "trivy"])
    if (!fs.existsSync(toolPath(t)))
      throw new Error(`${toolPath(t)} is missing: run scripts/install-scanners.sh`);

  const peerConfig = peerDockerConfig();
  // On an abrupt exit too: the daemon stopped, and the registry login not left in the temp folder.
  const abandon = (): void => {
    daemon.stopNow();
    peerConfig.cleanup();
  };
  process.once("exit", abandon);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      abandon();
      process.exit(130);
    });
  }

  const factories: FactoryPath[] = [];
  let runs: RunRecord[] = [];
  let emulationRows: EmulationResult[] = [];
  try {
    runs = await runRounds(
      await prepare(id, daemon, peerConfig.dir, benchDir, opt),
      opt,
      benchDir,
      factories,
    );
    if (opt.emulation) {
      const appDir = copyApp(path.join(benchDir, "emulation-app"));
      emulationRows = await emulation(daemon, peerConfig.dir, appDir, opt.repeat, benchDir);
    }
  } finally {
    await daemon.stop();
    await daemon.removeBuilder();
    await daemon.removeBuilder(peerConfig.dir);
    if (!opt.keep) {
      for (const f of factories) f.remove();
      daemon.removeState();
      removeWork(benchDir);
    }
    peerConfig.cleanup();
  }

  const load = monitor.stop();
  const results = judge(runs, opt.scenarios);
  const code = render(
    {
      id,
      date: new Date().toISOString(),
      machine: machine(),
      load: { atStart: loadAtStart, atEnd: os.loadavg(), samples: monitor.samples.length, ...load },
      options: opt,
      goals: verdicts(results),
      results,
      runs,
      emulation: emulationRows,
      tools: toolBuilds(),
    },
    opt,
  );
  // A smoke run (npm test) keeps only its JSON: its work folder (logs, event logs) goes.
  if (opt.dry && !opt.keep) fs.rmSync(benchDir, { recursive: true, force: true });
  return code;
}

/** What every round shares: the deps scenario's two manifests (resolved by npm), the commit, and
 *  the bench's daemon started empty with the peer's builder on it. */
async function prepare(
  id: string,
  daemon: BenchDaemon,
  peerDockerConfig: string,
  benchDir: string,
  opt: Options,
): Promise<Bench> {
  say(`resolving pino ${BASE_PINO} and ${BUMPED_PINO} with npm (the deps scenario's patch bump)`);
  const base = await manifestsWithPino(BASE_PINO, path.join(benchDir, "manifests"));
  const bumped = await manifestsWithPino(BUMPED_PINO, path.join(benchDir, "manifests"));
  const sha = await headSha();
  const created = (
    await runOk("git", ["-C", REPO_ROOT, "show", "-s", "--format=%cI", sha], { what: "git show" })
  ).stdout.trim();
  await daemon.fresh();
  await daemon.ensureBuilder(peerDockerConfig);
  return {
    id,
    sha,
    created,
    platforms: opt.platforms,
    daemon,
    base,
    bumped,
    peerDockerConfig,
    sslBundle: path.join(cacheDir(), "registry-tls", "ca-bundle.pem"),
  };
}

/** The paths' app copies, stacks' folders and manifests; logs, event logs and reports stay. */
function removeWork(benchDir: string): void {
  for (const d of fs.readdirSync(benchDir))
    if (/^r\d+$/.test(d))
      for (const sub of ["factory", "peer"])
        fs.rmSync(path.join(benchDir, d, sub), { recursive: true, force: true });
  fs.rmSync(path.join(benchDir, "emulation-app"), { recursive: true, force: true });
  fs.rmSync(path.join(benchDir, "manifests"), { recursive: true, force: true });
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(2);
    },
  );
}
