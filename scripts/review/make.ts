// One review: what the target stack ships today (its exports, SBOMs, a Trivy scan with today's DB,
// registry manifests, the tags a merge would move, its preview) next to the candidate
// (./candidate.ts), assembled into the review/ model.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { platformSlug } from "../../components/naming";
import { computeTags } from "../../components/tags";
import { KNOWN_PLATFORMS } from "../../components/types";
import { DEFAULT_GATES, type GatesConfig, validateGates } from "../../evidence/gates";
import {
  crane,
  digestOfTag,
  fetchSbomArtifact,
  probeInsecure,
  registryOf,
  type RegistryAuth,
} from "../../evidence/oci";
import { runSyft } from "../../evidence/scanners/syft";
import { runTrivyVulnerabilities } from "../../evidence/scanners/trivy";
import {
  parseGateResults,
  sbomDiff,
  vulnDiff,
  type GateSummary,
  type PlatformReview,
  type Review,
  type TagMove,
} from "../../review";
import { buildCandidate } from "./candidate";
import { NS, compactPreview, contextOnlyGates, manifestSize, reviewImageName } from "./pure";
import { REPO_ROOT, localAccess, say, serviceAccess } from "./stacks";

export interface Options {
  stack: string;
  out?: string;
  sha?: string;
  reviewDir: string;
  preview: boolean;
  /** A `pulumi preview --diff` output made elsewhere (CI: the preview job, which holds the read-only
   *  AWS role this job does not), shown instead of running one. */
  previewFile?: string;
  /** Build nothing: only the build-context checks (secrets, lint, misconfigurations) are judged. */
  build: boolean;
  mode: "local" | "service";
  /** The target's committed config file. */
  stackConfig: string;
  localDir: string;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync("git", args, {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return undefined;
  }
}

function readStackConfig(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new Error(`the stack's config file ${file} does not exist`);
  const doc = (parseYaml(fs.readFileSync(file, "utf8")) ?? {}) as {
    config?: Record<string, unknown>;
  };
  return { ...(doc.config ?? {}) };
}

async function currentSbom(
  sbomLocation: string | undefined,
  ref: string,
  platform: string,
  outDir: string,
  auth: RegistryAuth,
): Promise<{ doc: unknown; from: string }> {
  if (sbomLocation?.startsWith("file://")) {
    const file = sbomLocation.slice("file://".length);
    if (fs.existsSync(file))
      return { doc: JSON.parse(fs.readFileSync(file, "utf8")), from: sbomLocation };
  } else if (sbomLocation?.startsWith("oci://")) {
    try {
      return { doc: await fetchSbomArtifact(sbomLocation, auth), from: sbomLocation };
    } catch (e) {
      say(
        `${platform}: the published SBOM ${sbomLocation} could not be read (${e instanceof Error ? e.message : String(e)}); regenerating it with Syft`,
      );
    }
  }
  const s = await runSyft({ imageRef: ref, platform, outDir, auth });
  return { doc: JSON.parse(fs.readFileSync(s.spdxPath, "utf8")), from: `syft on ${ref}` };
}

async function sizeOf(
  auth: RegistryAuth,
  ref: string,
): Promise<{ sizeBytes: number; layers: number } | undefined> {
  try {
    return manifestSize(JSON.parse(await crane(auth, ["manifest", ref])));
  } catch (e) {
    say(`size of ${ref}: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

export async function makeReview(
  o: Options,
): Promise<{ review: Review; blocked: boolean; timings: Record<string, number> }> {
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const lap = (name: string, since: number): void => {
    timings[name] = Math.round((Date.now() - since) / 100) / 10;
  };
  fs.mkdirSync(o.reviewDir, { recursive: true });

  const targetConfig = readStackConfig(o.stackConfig);
  const imageName = String(targetConfig[`${NS}:imageName`] ?? "");
  if (imageName === "") throw new Error(`${o.stackConfig} sets no ${NS}:imageName`);
  const platforms = (
    (targetConfig[`${NS}:platforms`] as string[] | undefined) ?? [...KNOWN_PLATFORMS]
  ).map(String);
  const defaultBranch = String(targetConfig[`${NS}:defaultBranch`] ?? "main");
  const promoteFrom = targetConfig[`${NS}:promoteFrom`] as string | undefined;
  const gates: GatesConfig =
    targetConfig[`${NS}:gates`] === undefined
      ? { ...DEFAULT_GATES }
      : validateGates(targetConfig[`${NS}:gates`], `${NS}:gates`);
  // CI's review job holds a credential of its own (docs/delivery.md, "Trust model"): its account
  // replaces the target's for every registry call and for the review build.
  const ownUsername = process.env.IMAGE_FACTORY_REGISTRY_USERNAME || undefined;
  const username = ownUsername ?? (targetConfig[`${NS}:registryUsername`] as string | undefined);
  const appPath = path.resolve(REPO_ROOT, String(targetConfig[`${NS}:appPath`] ?? "./app"));
  const vulnDb = (targetConfig[`${NS}:vulnerabilityDb`] as string | undefined) || undefined;

  const token =
    process.env.IMAGE_FACTORY_REGISTRY_TOKEN ||
    (o.mode === "local" ? readLocalPassword() : undefined);
  const registry = registryOf(imageName);
  const auth: RegistryAuth = {
    registry,
    username,
    password: token,
    insecure: await probeInsecure(registry),
  };

  const target =
    o.mode === "local"
      ? localAccess({ IF_LOCAL_DIR: o.localDir, IF_STACK: o.stack, IF_STACK_CONFIG: o.stackConfig })
      : serviceAccess(o.stack);

  // What ships today.
  let t = Date.now();
  const outputs = (await target.outputs()) ?? {};
  lap("targetOutputs", t);
  const currentDigests = (outputs.platformDigests as Record<string, string> | undefined) ?? {};
  const sbomLocations = (outputs.sbomLocations as Record<string, string> | undefined) ?? {};
  const currentGates: GateSummary | undefined =
    outputs.gateResults !== undefined && outputs.gateResults !== null
      ? parseGateResults(outputs.gateResults, `${o.stack} gateResults`)
      : undefined;

  // The candidate.
  const sha = o.sha ?? process.env.GITHUB_SHA ?? git(["rev-parse", "HEAD"]);
  if (sha === undefined || !/^[0-9a-f]{40}$/.test(sha))
    throw new Error(`no commit to review: pass --sha <40 hex> (got ${JSON.stringify(sha)})`);
  const prRef = /^refs\/pull\/[1-9]\d*\/merge$/.test(process.env.GITHUB_REF ?? "")
    ? (process.env.GITHUB_REF as string)
    : undefined;
  const candidateRef = prRef ?? `refs/heads/${defaultBranch}`;
  const reviewImage = reviewImageName(imageName);
  const cacheBucket = /^s3:\/\/([^/]+)\//.exec(
    Object.values((outputs.cacheRefs as Record<string, string> | undefined) ?? {})[0] ?? "",
  )?.[1];
  const candidate =
    promoteFrom === undefined
      ? await buildCandidate({
          mode: o.mode,
          build: o.build,
          stack: o.stack,
          reviewDir: o.reviewDir,
          targetConfig,
          platforms,
          appPath,
          sha,
          ref: candidateRef,
          gates,
          vulnDb,
          username,
          token,
          cacheBucket,
          // On the service backend the token reaches the quarantine package only.
          quarantineCredential:
            o.mode === "service"
              ? { username: ownUsername, cacheRef: reviewImageName(imageName) }
              : undefined,
        })
      : undefined;
  Object.assign(timings, candidate?.timings ?? {});
  const candidateDigests = candidate?.digests ?? {};
  const buildErrors = candidate?.buildErrors ?? {};
  const evidence = candidate?.evidence;
  const evidenceProblem = candidate?.evidenceProblem;
  const notBuilt = candidate?.notBuilt ?? "";

  // Per platform: now → after merge.
  t = Date.now();
  const currentDir = path.join(o.reviewDir, "current");
  const reviews: PlatformReview[] = [];
  for (const platform of platforms) {
    const slug = platformSlug(platform);
    const cur = currentDigests[platform];
    const curRef = cur === undefined ? undefined : `${imageName}@${cur}`;
    const curSize = curRef === undefined ? undefined : await sizeOf(auth, curRef);
    const pr: PlatformReview = { platform, candidate: {}, packages: { unavailable: "" } };
    if (cur !== undefined)
      pr.current = {
        digest: cur,
        sizeBytes: curSize?.sizeBytes ?? 0,
        layers: curSize?.layers ?? 0,
      };
    if (promoteFrom !== undefined) {
      if (cur !== undefined)
        pr.candidate = { digest: cur, sizeBytes: curSize?.sizeBytes, layers: curSize?.layers };
      pr.packages = {
        unavailable: `${o.stack} promotes ${promoteFrom}'s digest on a release tag: a merge builds nothing here`,
      };
      reviews.push(pr);
      continue;
    }
    const candDigest = candidateDigests[platform];
    if (buildErrors[platform] !== undefined) pr.candidate.buildError = buildErrors[platform];
    if (candDigest === undefined) {
      pr.packages = {
        unavailable: o.build ? `the candidate did not build on ${platform}` : notBuilt,
      };
      reviews.push(pr);
      continue;
    }
    const candSize = await sizeOf(auth, `${reviewImage}@${candDigest}`);
    pr.candidate = {
      ...pr.candidate,
      digest: candDigest,
      sizeBytes: candSize?.sizeBytes,
      layers: candSize?.layers,
    };
    const candEvidence = evidence?.platforms[platform];
    if (candEvidence === undefined) {
      pr.packages = {
        unavailable: `no evidence for ${platform}: ${evidenceProblem ?? "the evidence run did not cover it"}`,
      };
      reviews.push(pr);
      continue;
    }
    try {
      const candidateSbom = JSON.parse(fs.readFileSync(candEvidence.sbomPath, "utf8")) as unknown;
      const current =
        curRef === undefined
          ? undefined
          : await currentSbom(
              sbomLocations[platform],
              curRef,
              platform,
              path.join(currentDir, "sbom"),
              auth,
            );
      pr.packages = sbomDiff(current?.doc, candidateSbom);
    } catch (e) {
      pr.packages = { unavailable: e instanceof Error ? e.message : String(e) };
    }
    const candVulnReport = path.join(
      evidence?.evidenceDir ?? "",
      "reports",
      `trivy-vuln-${slug}.json`,
    );
    try {
      if (!fs.existsSync(candVulnReport))
        throw new Error(
          `no vulnerability report for the candidate (${evidence?.gateResults.checks.find((c) => c.gate === `criticalVulnerabilities[${platform}]`)?.detail ?? "not run"})`,
        );
      let currentReport: unknown;
      if (curRef !== undefined) {
        // Judged with the same DB as the candidate, now: what changes is the image, not the DB.
        const report = path.join(currentDir, "reports", `trivy-vuln-${slug}.json`);
        await runTrivyVulnerabilities({
          imageRef: curRef,
          platform,
          reportPath: report,
          auth,
          db: { repository: vulnDb },
        });
        currentReport = JSON.parse(fs.readFileSync(report, "utf8"));
      }
      pr.vulnerabilities = vulnDiff(
        currentReport,
        JSON.parse(fs.readFileSync(candVulnReport, "utf8")),
      );
    } catch (e) {
      pr.vulnerabilities = { unavailable: e instanceof Error ? e.message : String(e) };
    }
    reviews.push(pr);
  }
  lap("compare", t);

  // The tags a merge to the default branch would move, and where they point now.
  const tagsToMove: TagMove[] = [];
  if (promoteFrom === undefined) {
    for (const tag of computeTags({ ref: `refs/heads/${defaultBranch}`, sha }, { defaultBranch })
      .tags) {
      const now = await digestOfTag(auth, `${imageName}:${tag}`).catch((e: unknown) => {
        say(`tag ${tag}: ${e instanceof Error ? e.message : String(e)}`);
        return undefined;
      });
      tagsToMove.push(now === undefined ? { tag } : { tag, currentDigest: now });
    }
  }

  let candidateGates: GateSummary;
  if (promoteFrom !== undefined)
    candidateGates = currentGates ?? { passed: true, checks: [], notRun: [] };
  else if (evidence !== undefined && !o.build)
    candidateGates = contextOnlyGates(
      parseGateResults(evidence.gateResults, "candidate gateResults"),
      notBuilt,
    );
  else if (evidence !== undefined)
    candidateGates = parseGateResults(evidence.gateResults, "candidate gateResults");
  else
    candidateGates = {
      passed: false,
      checks: [{ name: "evidence", status: "not-run", reason: evidenceProblem ?? "not run" }],
      notRun: ["evidence"],
    };

  // Key order of the JSON: platform, now, after merge, packages, vulnerabilities.
  const ordered = reviews.map(
    ({ platform, current, candidate, packages, vulnerabilities }): PlatformReview => ({
      platform,
      ...(current !== undefined ? { current } : {}),
      candidate,
      packages,
      ...(vulnerabilities !== undefined ? { vulnerabilities } : {}),
    }),
  );
  const review: Review = {
    stack: o.stack,
    imageName,
    platforms: ordered,
    gates: {
      candidate: candidateGates,
      ...(currentGates !== undefined ? { current: currentGates } : {}),
    },
    tagsToMove,
  };

  if (o.previewFile !== undefined) {
    review.preview = compactPreview(fs.readFileSync(o.previewFile, "utf8"));
  } else if (o.preview) {
    t = Date.now();
    const p = await target.preview();
    lap("preview", t);
    const compact = compactPreview(`${p.stdout}\n${p.code !== 0 ? p.stderr : ""}`);
    review.preview = p.code === 0 ? compact : `pulumi preview failed (exit ${p.code}):\n${compact}`;
  }
  lap("total", t0);
  const blocked = Object.keys(buildErrors).length > 0 || !candidateGates.passed;
  return { review, blocked, timings };
}

function readLocalPassword(): string | undefined {
  const file = path.join(
    process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory"),
    "registry",
    "password",
  );
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : undefined;
}
