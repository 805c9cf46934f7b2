// The image-reference grammar, in one place: registry host, repository path, tag, digest, a
// `name@digest` reference and a Pulumi stack name. The evidence engine uses it directly; the
// Pulumi program through components/reference.ts (the engine imports nothing from components/,
// so the grammar lives at the lower layer).

/** A registry host as the distribution reference grammar has it: a dotted name, a name with a
 *  port, `localhost`, or a bracketed IPv6 address, each with an optional port. */
export const REGISTRY_HOST =
  /^(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*:[0-9]{1,5}|\[[0-9a-f:]+\](?::[0-9]{1,5})?)(?::[0-9]{1,5})?$/;
/** One lowercase repository path component. */
export const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** An OCI tag. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** A sha256 content digest. */
export const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** `stack`, `project/stack` or `org/project/stack`. */
export const STACK_NAME = /^([A-Za-z0-9_.-]+\/){0,2}[A-Za-z0-9_.-]+$/;

/** `host/path` with no tag or digest; undefined when it is one, else what is wrong. */
export function imageNameProblem(name: string): string | undefined {
  if (name !== name.toLowerCase()) return "must be lowercase";
  if (name.includes("@") || /:[^/]*$/.test(name.split("/").slice(1).join("/")))
    return "must not carry a tag or digest";
  const [host, ...path] = name.split("/");
  if (path.length === 0 || !REGISTRY_HOST.test(host)) return "must start with a registry host";
  const bad = path.find((c) => !PATH_COMPONENT.test(c));
  if (bad !== undefined || name.length > 255)
    return `has an invalid repository path component ${JSON.stringify(bad ?? name)}`;
  return undefined;
}

/** `name[:tag]@sha256:…` → its parts; undefined when it is not pinned by digest. */
export function splitDigestRef(
  ref: string,
): { name: string; tag?: string; digest: string } | undefined {
  const m = /^(.+?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?@(sha256:[0-9a-f]{64})$/.exec(ref);
  if (m === null || m[1].split("/").pop()?.includes(":")) return undefined;
  return { name: m[1], tag: m[2], digest: m[3] };
}

/** The registry of a reference (Docker Hub when the first component is no host). */
export function registryOf(imageName: string): string {
  const first = imageName.split("/")[0];
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : "docker.io";
}

export function isLoopbackRegistry(registry: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(registry);
}

/** `<registry>/<repo>:<tag>` or `@digest` → the repository path within the registry. */
export function repositoryOf(imageName: string): string {
  const reg = registryOf(imageName);
  const rest = imageName.startsWith(`${reg}/`) ? imageName.slice(reg.length + 1) : imageName;
  return rest.replace(/@.*$/, "").replace(/:[^/]*$/, "");
}
