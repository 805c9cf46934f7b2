// The GitHub side of the GHCR package, as far as GitHub's API lets it be declared. GitHub has no
// API to create a container package or set its visibility (a package exists once its first image
// is pushed; visibility is changed in the UI), so those are checked and published as repository
// variables the workflows read, and everything the API does cover is a resource here.
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { NAMESPACE, checkObject, show } from "./config";
import type { GithubConfig } from "./types";

export interface GhcrPackageArgs {
  /** Full image name, `ghcr.io/<owner>/<name>`. */
  imageName: string;
  github: GithubConfig;
  platforms: string[];
  /** Environment the prod deploy job runs in. @default "production" */
  environmentName?: string;
  /** Tag pattern that may deploy to the environment. @default "v*" */
  releaseTagPattern?: string;
}

/** A reviewer is a user login (`alice`) or a team as `<org>/<team-slug>`. */
export function parseReviewer(
  text: string,
): { kind: "user"; login: string } | { kind: "team"; org: string; slug: string } {
  const team = /^@?([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9][A-Za-z0-9_-]*)$/.exec(text);
  if (team) return { kind: "team", org: team[1], slug: team[2] };
  const user = /^@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))$/.exec(text);
  if (user) return { kind: "user", login: user[1] };
  throw new Error(
    `github.productionReviewers: "${text}" is neither a user login nor "<org>/<team-slug>"`,
  );
}

/** Checks `image-factory:github` and applies its defaults; undefined when GitHub is not configured.
 *  Problems name the key and the value. */
export function validateGithub(
  value: unknown,
  imageName: string,
  problems: string[],
): GithubConfig | undefined {
  // Pulumi.yaml declares `{}` as the default: no GitHub block means no GitHub resources.
  if (
    value === undefined ||
    (typeof value === "object" && value !== null && Object.keys(value).length === 0)
  )
    return undefined;
  const key = `${NAMESPACE}:github`;
  const o = checkObject(
    "github",
    value,
    {
      owner: "string",
      repository: "string",
      productionReviewers: "string[]",
      packageVisibility: "string",
      untaggedRetentionDays: "number",
    },
    problems,
  );
  const owner = o.owner as string | undefined;
  const repository = o.repository as string | undefined;
  const slug = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
  if (owner === undefined || !slug.test(owner))
    problems.push(`${key}.owner must be a GitHub user or organisation, got ${show(owner)}`);
  if (repository === undefined || !/^[A-Za-z0-9_.-]{1,100}$/.test(repository)) {
    problems.push(`${key}.repository must be a repository name, got ${show(repository)}`);
  }
  if (
    owner !== undefined &&
    imageName.startsWith("ghcr.io/") &&
    imageName.split("/")[1] !== owner.toLowerCase()
  ) {
    problems.push(
      `${key}.owner ${show(owner)} does not own ${NAMESPACE}:imageName ${show(imageName)} (GHCR packages live under ghcr.io/<owner>/)`,
    );
  }
  // The production environment is the release gate: without a reviewer, anyone who can push a
  // release tag deploys to production unreviewed.
  const reviewers = (o.productionReviewers as string[] | undefined) ?? [];
  if (reviewers.length === 0) {
    problems.push(
      `${key}.productionReviewers must name at least one user or "<org>/<team>" to approve production deploys, got ${show(o.productionReviewers ?? [])}`,
    );
  }
  reviewers.forEach((r, i) => {
    try {
      parseReviewer(r);
    } catch {
      problems.push(
        `${key}.productionReviewers[${i}] is neither a user login nor "<org>/<team-slug>", got ${show(r)}`,
      );
    }
  });
  const visibility =
    (o.packageVisibility as GithubConfig["packageVisibility"] | undefined) ?? "private";
  if (!["public", "private", "internal"].includes(visibility)) {
    problems.push(
      `${key}.packageVisibility must be public, private or internal, got ${show(visibility)}`,
    );
  }
  const days = (o.untaggedRetentionDays as number | undefined) ?? 30;
  if (!(Number.isInteger(days) && days >= 1))
    problems.push(`${key}.untaggedRetentionDays must be a whole number ≥ 1, got ${show(days)}`);
  return {
    owner: owner ?? "",
    repository: repository ?? "",
    productionReviewers: reviewers,
    packageVisibility: visibility,
    untaggedRetentionDays: days,
  };
}

export function validateGhcrPackage(args: GhcrPackageArgs): void {
  const [host, owner, ...rest] = args.imageName.split("/");
  if (host !== "ghcr.io" || owner === undefined || rest.length === 0) {
    throw new Error(
      `GhcrPackage: imageName must be "ghcr.io/<owner>/<name>", got "${args.imageName}"`,
    );
  }
  if (owner !== args.github.owner.toLowerCase()) {
    throw new Error(
      `GhcrPackage: github.owner "${args.github.owner}" does not own imageName "${args.imageName}"`,
    );
  }
  // GitHub allows at most six reviewers per environment protection rule.
  if (args.github.productionReviewers.length > 6) {
    throw new Error(
      `GhcrPackage: github.productionReviewers allows at most 6 entries, got ${args.github.productionReviewers.length}`,
    );
  }
  args.github.productionReviewers.forEach(parseReviewer);
}

/** Repository variables the workflows read (`vars.IMAGE_NAME` …). */
export function packageVariables(args: GhcrPackageArgs): Record<string, string> {
  return {
    IMAGE_NAME: args.imageName,
    IMAGE_PLATFORMS: args.platforms.join(","),
    GHCR_PACKAGE_NAME: args.imageName.split("/").slice(2).join("/"),
    GHCR_PACKAGE_VISIBILITY: args.github.packageVisibility,
    GHCR_UNTAGGED_RETENTION_DAYS: String(args.github.untaggedRetentionDays),
  };
}

export class GhcrPackage extends pulumi.ComponentResource {
  public readonly environment: github.RepositoryEnvironment;
  public readonly variables: github.ActionsVariable[];
  public readonly packageUrl: pulumi.Output<string>;

  constructor(name: string, args: GhcrPackageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:github:GhcrPackage", name, {}, opts);
    validateGhcrPackage(args);
    const environmentName = args.environmentName ?? "production";
    const releaseTagPattern = args.releaseTagPattern ?? "v*";
    const repository = args.github.repository;

    this.variables = Object.entries(packageVariables(args)).map(
      ([variableName, value]) =>
        new github.ActionsVariable(
          `${name}-var-${variableName.toLowerCase()}`,
          { repository, variableName, value },
          { parent: this },
        ),
    );

    const users: pulumi.Output<number>[] = [];
    const teams: pulumi.Output<number>[] = [];
    for (const r of args.github.productionReviewers.map(parseReviewer)) {
      if (r.kind === "user") {
        users.push(
          github
            .getUserOutput({ username: r.login }, { parent: this })
            .id.apply((id) => Number(id)),
        );
      } else {
        teams.push(
          github
            .getTeamOutput({ slug: r.slug, summaryOnly: true }, { parent: this })
            .id.apply((id) => Number(id)),
        );
      }
    }

    this.environment = new github.RepositoryEnvironment(
      `${name}-environment`,
      {
        repository,
        environment: environmentName,
        preventSelfReview: true,
        canAdminsBypass: false,
        reviewers: users.length + teams.length > 0 ? [{ users, teams }] : [],
        // Only release tags may deploy to production: custom policies below name them.
        deploymentBranchPolicy: { protectedBranches: false, customBranchPolicies: true },
      },
      { parent: this },
    );
    new github.RepositoryEnvironmentDeploymentPolicy(
      `${name}-release-tags`,
      { repository, environment: this.environment.environment, tagPattern: releaseTagPattern },
      { parent: this },
    );

    const [, owner, ...pkg] = args.imageName.split("/");
    this.packageUrl = pulumi.output(
      `https://github.com/${owner}/${repository}/pkgs/container/${pkg.join("%2F")}`,
    );
    this.registerOutputs({
      environment: this.environment.environment,
      packageUrl: this.packageUrl,
    });
  }
}
