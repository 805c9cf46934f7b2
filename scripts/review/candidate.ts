// The candidate side of a review: the factory program on the review stack (publish: false, into
// the quarantine repository `<imageName>-review`), the platforms that built read from its state,
// the ones that did not named from the BuildKit output, then the evidence engine on what built —
// never blocking: a failing gate is what the review shows. Without a build (a CI job with no push
// credential or builders) only the build-context checks are judged.
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { platformSlug } from "../../components/naming";
import { lastLines } from "../../evidence/exec";
import type { GatesConfig } from "../../evidence/gates";
import { type EvidenceResult, runEvidence } from "../../evidence/run";
import type { BuildError } from "../../review";
import { NS, parseBuildFailures, reviewImageName, reviewStackConfig } from "./pure";
import { REPO_ROOT, localBuilder, say, serviceBuilder } from "./stacks";

export interface CandidateRequest {
  mode: "local" | "service";
  /** false: build nothing, judge the build context only. */
  build: boolean;
  /** The target stack's name: the review stack takes it (its builders, its cache settings). */
  stack: string;
  reviewDir: string;
  /** The target's committed config (`image-factory:*` and provider keys). */
  targetConfig: Record<string, unknown>;
  platforms: string[];
  appPath: string;
  /** The commit and ref the merge builds. */
  sha: string;
  ref: string;
  gates: GatesConfig;
  vulnDb?: string;
  username?: string;
  token?: string;
  /** The target's s3 cache bucket, when it created one. */
  cacheBucket?: string;
  /** Set when the credential is not the target's (CI's quarantine-only one): its account, and the
   *  registry cache moved into quarantine, where that credential can write. */
  quarantineCredential?: { username?: string; cacheRef: string };
}

export interface CandidateBuild {
  digests: Record<string, string>;
  buildErrors: Record<string, BuildError>;
  evidence?: EvidenceResult;
  evidenceProblem?: string;
  /** Why a platform has no candidate when nothing was built. */
  notBuilt: string;
  timings: Record<string, number>;
}

export async function buildCandidate(r: CandidateRequest): Promise<CandidateBuild> {
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number): void => {
    timings[name] = Math.round((Date.now() - since) / 100) / 10;
  };
  const digests: Record<string, string> = {};
  const buildErrors: Record<string, BuildError> = {};
  let coverageImage: string | undefined;
  let evidence: EvidenceResult | undefined;
  let evidenceProblem: string | undefined;
  const reviewImage = reviewImageName(String(r.targetConfig[`${NS}:imageName`] ?? ""));
  const notBuilt = `not built in this run: a review build needs push access to ${reviewImage} and the stack's builders (docs/delivery.md, "Pull-request review")`;

  if (!r.build) {
    say(`no review build (${notBuilt}); judging the build context only`);
    const t = Date.now();
    try {
      evidence = await runEvidence({
        imageName: reviewImage,
        platformDigests: {},
        sourceRevision: r.sha,
        dockerfile: path.join(r.appPath, "Dockerfile"),
        contextDir: r.appPath,
        gates: r.gates,
        outputDir: path.join(r.reviewDir, "evidence"),
        sbomStore: "file",
        vulnDb: { repository: r.vulnDb },
      });
    } catch (e) {
      evidenceProblem = e instanceof Error ? e.message : String(e);
    }
    lap("evidence", t);
  }

  if (r.build) {
    const baseConfig = path.join(r.reviewDir, "Pulumi.review.base.yaml");
    fs.writeFileSync(
      baseConfig,
      stringifyYaml({
        config: reviewStackConfig(r.targetConfig, {
          sha: r.sha,
          ref: r.ref,
          cacheBucket: r.cacheBucket,
          registryUsername: r.quarantineCredential?.username,
          cacheRef: r.quarantineCredential?.cacheRef,
        }),
      }),
    );
    const builder =
      r.mode === "local"
        ? localBuilder(r.reviewDir, r.stack, baseConfig)
        : serviceBuilder(r.reviewDir, r.stack, baseConfig, r.token ?? "");
    say(
      `building ${r.platforms.join(", ")} of ${path.relative(REPO_ROOT, r.appPath) || "."} at ${r.sha.slice(0, 7)} into ${reviewImage} (review stack ${r.stack} in ${path.relative(REPO_ROOT, r.reviewDir)})`,
    );
    const tb = Date.now();
    const up = await builder.up();
    lap("build", tb);
    fs.writeFileSync(path.join(r.reviewDir, "build.log"), `${up.stdout}\n${up.stderr}`);
    const failures = parseBuildFailures(`${up.stdout}\n${up.stderr}`);
    const state = await builder.exportState();
    for (const res of state.deployment?.resources ?? []) {
      if (res.type !== "docker-build:index:Image") continue;
      const name = res.urn.split("::").pop() ?? "";
      const digest = res.outputs?.digest as string | undefined;
      if (name === "image-coverage" && failures[name] === undefined)
        coverageImage = res.outputs?.ref as string | undefined;
      const platform = r.platforms.find((p) => `image-${platformSlug(p)}` === name);
      if (
        platform !== undefined &&
        failures[name] === undefined &&
        digest !== undefined &&
        digest !== ""
      )
        digests[platform] = digest;
    }
    for (const p of r.platforms) {
      const f = failures[`image-${platformSlug(p)}`];
      if (f !== undefined) buildErrors[p] = f;
    }
    if (up.code !== 0 && Object.keys(failures).length === 0) {
      throw new Error(
        `the review build failed without a build error to show (exit ${up.code}); see ${path.join(r.reviewDir, "build.log")}:\n${lastLines(`${up.stdout}\n${up.stderr}`, 25)}`,
      );
    }
    for (const p of r.platforms)
      if (digests[p] === undefined && buildErrors[p] === undefined)
        buildErrors[p] = {
          stage: "unknown",
          step: "unknown",
          tail: lastLines(`${up.stdout}\n${up.stderr}`, 25),
        };
    say(
      `built ${Object.keys(digests).join(", ") || "nothing"}${Object.keys(buildErrors).length > 0 ? `; failed: ${Object.keys(buildErrors).join(", ")}` : ""} (${timings.build} s)`,
    );

    // Evidence on what built; gate failures are the review's content, not its end.
    const te = Date.now();
    try {
      const outDir = path.join(r.reviewDir, "evidence");
      fs.rmSync(outDir, { recursive: true, force: true });
      evidence = await runEvidence({
        imageName: reviewImage,
        platformDigests: digests,
        sourceRevision: r.sha,
        dockerfile: path.join(r.appPath, "Dockerfile"),
        contextDir: r.appPath,
        coverageImage,
        gates: r.gates,
        outputDir: outDir,
        sbomStore: "file",
        vulnDb: { repository: r.vulnDb },
        registryUsername: r.username,
        registryToken: r.token,
      });
    } catch (e) {
      evidenceProblem = e instanceof Error ? e.message : String(e);
      say(`the evidence run failed: ${evidenceProblem}`);
    }
    lap("evidence", te);
  }
  return { digests, buildErrors, evidence, evidenceProblem, notBuilt, timings };
}
