// The peer's path, the seed's hand-written pipeline as a CI job runs it: one `docker buildx build
// --platform <all> --push` with a registry cache (mode=max), then Syft SPDX and Trivy
// secret/misconfig per platform, one after another.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { computeTags } from "../../components/tags";
import {
  CA_BUNDLE,
  STACK_REGISTRY,
  cacheDir,
  copyApp,
  localRegistryAuth,
  run,
  tail,
  tempDockerConfig,
  toolPath,
  type RunResult,
  type TempDockerConfig,
} from "../../test/e2e/lib";
import type { RunRecord, Scenario, Timings } from "./model";
import type { Round } from "./round";
import { writeManifests } from "./scenarios";

/** The peer's own DOCKER_CONFIG, as a CI job has: only the local registry's login, and the user's
 *  buildx plugin (which lives in the user's docker config folder). */
export function peerDockerConfig(): TempDockerConfig {
  const config = tempDockerConfig(STACK_REGISTRY, localRegistryAuth());
  fs.symlinkSync(
    path.join(os.homedir(), ".docker", "cli-plugins"),
    path.join(config.dir, "cli-plugins"),
  );
  return config;
}

export class PeerPath {
  readonly appDir: string;
  readonly repository: string;
  readonly cacheRef: string;

  constructor(private readonly r: Round) {
    const dir = path.join(r.dir, "peer");
    fs.mkdirSync(dir, { recursive: true });
    this.appDir = copyApp(path.join(dir, "app"));
    writeManifests(this.appDir, r.base);
    const factoryRepo = `image-factory/bench-${r.id}-r${r.round}`;
    this.repository = `${STACK_REGISTRY}/${factoryRepo}-seed`;
    this.cacheRef = `${STACK_REGISTRY}/${factoryRepo}-seedcache`;
  }

  async run(scenario: Scenario): Promise<RunRecord> {
    const r = this.r;
    const tag = `${this.repository}:r${r.round}-${scenario}`;
    const recordsBefore = await r.daemon.records();
    const startedAt = new Date();
    const t0 = Date.now();
    const build = await this.build(scenario, tag);
    const segments: Timings = { build: build.durationMs / 1000, syft: 0, trivy: 0 };
    const detail: Timings = {};
    let scans = 0;
    for (const platform of r.platforms) {
      for (const [tool, result] of await this.scan(scenario, tag, platform)) {
        segments[tool] += result.durationMs / 1000;
        detail[`${tool} ${platform}`] = result.durationMs / 1000;
        scans += 1;
      }
    }
    const t1 = Date.now();
    return {
      round: r.round,
      scenario,
      path: "peer",
      wallSeconds: (t1 - t0) / 1000,
      segments,
      detail,
      builds: 1,
      scans,
      buildkitRecords: (await r.daemon.records()) - recordsBefore,
      startedAt: startedAt.toISOString(),
    };
  }

  private env(): NodeJS.ProcessEnv {
    return {
      DOCKER_CONFIG: this.r.peerDockerConfig,
      SSL_CERT_FILE: this.r.sslBundle,
      SYFT_CHECK_FOR_APP_UPDATE: "false",
    };
  }

  /** The seed pipeline's build: every platform in one buildx build, registry cache mode=max. */
  private async build(scenario: Scenario, tag: string): Promise<RunResult> {
    const r = this.r;
    const plan = computeTags({ ref: "refs/heads/main", sha: r.sha }, { defaultBranch: "main" });
    const buildArgs = {
      BASE_IMAGE: `${STACK_REGISTRY}/image-factory/node-base:22`,
      VERSION: plan.version,
      REVISION: r.sha,
      CREATED: r.created,
      SOURCE: `${STACK_REGISTRY}/${"image-factory/bench"}`,
    };
    const build = await run(
      "docker",
      [
        "buildx",
        "build",
        "--builder",
        r.daemon.builder,
        "--progress",
        "plain",
        "--platform",
        r.platforms.join(","),
        "--push",
        "-t",
        tag,
        "--cache-from",
        `type=registry,ref=${this.cacheRef}`,
        "--cache-to",
        // The factory's registry cache form (components/buildCache.ts): an OCI image manifest.
        `type=registry,ref=${this.cacheRef},mode=max,oci-mediatypes=true,image-manifest=true`,
        "--secret",
        `id=npm_ca,src=${CA_BUNDLE}`,
        ...Object.entries(buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        this.appDir,
      ],
      { env: this.env(), timeoutMs: 60 * 60_000 },
    );
    fs.writeFileSync(
      path.join(r.dir, `peer-${scenario}.build.log`),
      `${build.stdout}\n${build.stderr}`,
    );
    if (build.code !== 0)
      throw new Error(
        `peer ${scenario} (round ${r.round}): docker buildx build failed (exit ${build.code}):\n${tail(build.stderr, 25)}`,
      );
    return build;
  }

  /** Syft then Trivy on one platform of the pushed image, each writing its report beside the logs. */
  private async scan(
    scenario: Scenario,
    tag: string,
    platform: string,
  ): Promise<Array<["syft" | "trivy", RunResult]>> {
    const report = (ext: string): string =>
      path.join(this.r.dir, `peer-${scenario}-${platform.replace(/\//g, "-")}.${ext}`);
    const syft = await this.tool(scenario, tag, platform, "syft", [
      "scan",
      `registry:${tag}`,
      "--platform",
      platform,
      "-q",
      "-o",
      `spdx-json=${report("spdx.json")}`,
    ]);
    const trivy = await this.tool(scenario, tag, platform, "trivy", [
      "image",
      "--platform",
      platform,
      "--scanners",
      "secret",
      "--image-config-scanners",
      "misconfig,secret",
      "--skip-check-update",
      "--skip-version-check",
      "--disable-telemetry",
      "--quiet",
      "--cache-dir",
      path.join(cacheDir(), "trivy-cache"),
      "--format",
      "json",
      "--output",
      report("trivy.json"),
      tag,
    ]);
    return [
      ["syft", syft],
      ["trivy", trivy],
    ];
  }

  private async tool(
    scenario: Scenario,
    tag: string,
    platform: string,
    name: "syft" | "trivy",
    args: string[],
  ): Promise<RunResult> {
    const res = await run(toolPath(name), args, { env: this.env(), timeoutMs: 600_000 });
    if (res.code !== 0)
      throw new Error(
        `peer ${scenario}: ${name} on ${tag} (${platform}) failed (exit ${res.code}): ${tail(res.stderr, 10)}`,
      );
    return res;
  }
}
