// docker-build rules: every configured platform built, sha-<commit> tags on what is pushed and
// published, and cache exports in the configured mode.
import { type Props, type StackResource, TYPES, asArray, asStrings } from "./resources";
import type { PolicyStackConfig } from "./stackConfig";

/** buildx treats `linux/arm` as `linux/arm/v7`; docker-build's Platform enum only has the former. */
export function normalizePlatform(p: string): string {
  return p === "linux/arm" ? "linux/arm/v7" : p;
}

/** Stack rule: the docker-build Images together build every platform in the stack config. */
export function checkPlatformsBuilt(
  resources: StackResource[],
  config: PolicyStackConfig,
): string[] {
  if (config.promoteFrom) {
    return [];
  }
  const built = new Set(
    resources
      .filter((r) => r.type === TYPES.image)
      .flatMap((r) => asStrings(r.props.platforms).map(normalizePlatform)),
  );
  const missing = config.platforms.map(normalizePlatform).filter((p) => !built.has(p));
  return missing.length === 0
    ? []
    : [
        `configured platform${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not built by any docker-build Image (image-factory:platforms = ${JSON.stringify(config.platforms)}; built: ${JSON.stringify([...built].sort())})`,
      ];
}

const SHA_TAG = /:sha-[0-9a-f]{7,40}(?:$|[-_.])/;

/** Rule: a pushed docker-build Image carries a `sha-<commit>` tag. Tags still unknown during a
 *  preview (computed) are not judged. */
export function checkShaTag(type: string, props: Props): string[] {
  if (type === TYPES.image) {
    if (props.push !== true) {
      return [];
    }
    if (props.tags === undefined) {
      return [];
    }
    const tags = asStrings(props.tags);
    return tags.some((t) => SHA_TAG.test(t))
      ? []
      : [`pushed image has no sha-<commit> tag (tags: ${JSON.stringify(tags)})`];
  }
  return [];
}

/** Stack rule: when the stack publishes docker-build Indexes, one of them is the `sha-` tag. */
export function checkIndexShaTag(resources: StackResource[]): string[] {
  const indexes = resources.filter((r) => r.type === TYPES.index);
  const tags = indexes.map((r) => r.props.tag).filter((t): t is string => typeof t === "string");
  if (indexes.length === 0 || tags.length < indexes.length) {
    return [];
  }
  return tags.some((t) => SHA_TAG.test(t))
    ? []
    : [`no published manifest list carries a sha-<commit> tag (tags: ${JSON.stringify(tags)})`];
}

const CACHE_BACKENDS = ["registry", "local", "s3", "gha", "azblob"] as const;

/** Rule: every cache export of a docker-build Image uses the configured mode (max unless the
 *  stack config says `cache.mode: min`), and an Image exports a cache at all. */
export function checkCacheMode(type: string, props: Props, wanted: "max" | "min"): string[] {
  // The coverage stage's image only reads its platform's cache: writing it would replace that
  // platform's cache manifest with one lacking the runtime stage.
  if (type !== TYPES.image || props.target === "coverage") {
    return [];
  }
  const entries = asArray(props.cacheTo) as Props[];
  const exporting = entries.filter(
    (e) => e && e.disabled !== true && CACHE_BACKENDS.some((b) => e[b] !== undefined),
  );
  if (exporting.length === 0) {
    return [`exports no build cache; configure image-factory:cache (mode ${wanted})`];
  }
  const out: string[] = [];
  for (const e of exporting) {
    for (const backend of CACHE_BACKENDS) {
      const b = e[backend] as Props | undefined;
      if (b === undefined) {
        continue;
      }
      // docker-build applies its own default (min) when mode is unset.
      const mode = b.mode ?? "min";
      if (mode !== wanted) {
        out.push(
          `cacheTo ${backend} mode is ${JSON.stringify(mode)}; image-factory:cache.mode wants "${wanted}"`,
        );
      }
    }
  }
  return out;
}
