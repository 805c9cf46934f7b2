// Registry access for the evidence engine: credentials handed to tools through a private Docker
// config or their environment (never a command line), reads through crane, and the SBOM artifact
// (an OCI 1.1 referrer of the platform image) for registries that keep evidence beside the image.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execTool, lastLines, requireTool } from "./exec";
import { isLoopbackRegistry, registryOf, repositoryOf } from "./reference";

export { isLoopbackRegistry, registryOf, repositoryOf } from "./reference";

/** Registry access for the scanners. The password is handed to tools through their environment
 *  (or a private temp config file for Docker), never on a command line, in a log or an output. */
export interface RegistryAuth {
  /** Host[:port], e.g. `127.0.0.1:5000`, `ghcr.io`. */
  registry: string;
  username?: string;
  password?: string;
  /** Plain HTTP (the local registry). @default true for loopback hosts */
  insecure?: boolean;
  /** Hosts besides the registry itself allowed to issue bearer tokens (e.g. `auth.docker.io`). */
  authHosts?: string[];
}

export function insecureOf(auth: RegistryAuth | undefined): boolean {
  return auth?.insecure ?? (auth ? isLoopbackRegistry(auth.registry) : false);
}

/** Whether a registry speaks plain HTTP. Asked, not guessed from the address: the local stack has
 *  a plain registry (127.0.0.1:5000) and a TLS one with a local CA (127.0.0.1:5443). Only loopback
 *  registries may be plain HTTP; a TLS certificate this process does not trust is an error that
 *  says how to trust it. */
export async function probeInsecure(registry: string): Promise<boolean> {
  try {
    await fetch(`https://${registry}/v2/`, { signal: AbortSignal.timeout(10_000) });
    return false;
  } catch (e) {
    const code = String((e as { cause?: { code?: unknown } }).cause?.code ?? "");
    if (/CERT|SELF_SIGNED|VERIFY|ALTNAME/.test(code)) {
      throw new Error(
        `registry ${registry} serves TLS with a certificate this process does not trust (${code}); trust its CA with NODE_EXTRA_CA_CERTS and SSL_CERT_FILE (the local stack: scripts/registry-tls.sh env)`,
      );
    }
    if (!isLoopbackRegistry(registry)) {
      throw new Error(
        `registry ${registry} is not reachable over HTTPS: ${code || (e instanceof Error ? e.message : String(e))}`,
      );
    }
    return true;
  }
}

/** A throwaway Docker client config holding only this registry's credentials (mode 600, deleted
 *  after use), so the password is never on a command line and the user's config is untouched. */
export function withDockerConfig<T>(
  auth: RegistryAuth | undefined,
  fn: (env: Record<string, string>) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-docker-"));
  fs.chmodSync(dir, 0o700);
  const auths: Record<string, { auth: string }> = {};
  if (auth?.username !== undefined && auth.password !== undefined) {
    auths[auth.registry] = {
      auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64"),
    };
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ auths }), { mode: 0o600 });
  return fn({ DOCKER_CONFIG: dir }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

/** Where Basic credentials may be sent for a Bearer challenge: over HTTPS (plain HTTP only for a
 *  loopback registry), to the registry's own host or to an auth host the caller named. A registry
 *  (or a man in the middle) answering with a foreign realm must not harvest the password. */
export function checkedRealm(
  realm: string | undefined,
  auth: Pick<RegistryAuth, "registry" | "authHosts" | "insecure">,
): URL {
  let url: URL;
  try {
    url = new URL(realm ?? "");
  } catch {
    throw new Error(
      `registry ${auth.registry}: bearer realm ${JSON.stringify(realm)} is not a URL; no credentials sent`,
    );
  }
  const registryHost = auth.registry.replace(/:\d+$/, "");
  const allowed = [auth.registry, registryHost, ...(auth.authHosts ?? [])];
  if (!allowed.includes(url.host) && !allowed.includes(url.hostname)) {
    throw new Error(
      `registry ${auth.registry}: bearer realm ${url.origin} is not the registry's host (nor an allowed auth host: ${allowed.join(", ")}); no credentials sent`,
    );
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackRegistry(url.host))) {
    throw new Error(
      `registry ${auth.registry}: bearer realm ${url.origin} is not HTTPS; no credentials sent`,
    );
  }
  return url;
}

function sha256(data: Buffer | string): string {
  return `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
}

function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const [scheme, ...rest] = header.split(" ");
  const params: Record<string, string> = {};
  for (const m of rest.join(" ").matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme: scheme.toLowerCase(), params };
}

/** Fetch against a registry, answering Basic and Bearer (token service) challenges. */
async function registryFetch(
  auth: RegistryAuth,
  repo: string,
  pathAndQuery: string,
  init: RequestInit = {},
): Promise<Response> {
  const base = `${insecureOf(auth) ? "http" : "https"}://${auth.registry}`;
  const url = pathAndQuery.startsWith("http") ? pathAndQuery : `${base}${pathAndQuery}`;
  let res = await fetch(url, { ...init, redirect: "follow" });
  if (res.status !== 401) return res;
  const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
  const basic =
    auth.username !== undefined && auth.password !== undefined
      ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`
      : undefined;
  let authorization: string | undefined = basic;
  if (challenge.scheme === "bearer") {
    const tokenUrl = checkedRealm(challenge.params.realm, auth);
    if (challenge.params.service) tokenUrl.searchParams.set("service", challenge.params.service);
    tokenUrl.searchParams.set("scope", `repository:${repo}:pull,push`);
    const t = await fetch(tokenUrl, { headers: basic ? { authorization: basic } : {} });
    if (!t.ok)
      throw new Error(
        `registry token request to ${tokenUrl.origin}${tokenUrl.pathname} failed: HTTP ${t.status}`,
      );
    const body = (await t.json()) as { token?: string; access_token?: string };
    authorization = `Bearer ${body.token ?? body.access_token ?? ""}`;
  }
  if (authorization === undefined) return res;
  const headers = new Headers(init.headers);
  headers.set("authorization", authorization);
  res = await fetch(url, { ...init, headers, redirect: "follow" });
  return res;
}

async function pushBlob(auth: RegistryAuth, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const head = await registryFetch(auth, repo, `/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  if (head.ok) return digest;
  const start = await registryFetch(auth, repo, `/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202)
    throw new Error(
      `blob upload to ${auth.registry}/${repo} refused: HTTP ${start.status} ${await start.text()}`,
    );
  const location = start.headers.get("location") ?? "";
  const url = new URL(location, `${insecureOf(auth) ? "http" : "https"}://${auth.registry}`);
  url.searchParams.set("digest", digest);
  const put = await registryFetch(auth, repo, url.toString(), {
    method: "PUT",
    body: new Uint8Array(data),
    headers: { "content-type": "application/octet-stream" },
  });
  if (put.status !== 201)
    throw new Error(
      `blob upload to ${auth.registry}/${repo} failed: HTTP ${put.status} ${await put.text()}`,
    );
  return digest;
}

export const SPDX_ARTIFACT_TYPE = "application/spdx+json";

/** Pushes an SBOM next to the image as an OCI 1.1 artifact whose `subject` is the platform image,
 *  so registries with the referrers API (GHCR) list it under the image; it is also tagged
 *  `sha256-<hex>.sbom` (the cosign convention) so registries without that API (distribution 2.8)
 *  find it by tag. Returns `oci://<repo>@<artifact digest>`. */
export async function pushSbomArtifact(opts: {
  imageName: string;
  subjectDigest: string;
  subjectSize: number;
  subjectMediaType: string;
  sbomPath: string;
  platform: string;
  auth: RegistryAuth;
}): Promise<string> {
  const repo = repositoryOf(opts.imageName);
  const sbom = fs.readFileSync(opts.sbomPath);
  const emptyConfig = Buffer.from("{}");
  const configDigest = await pushBlob(opts.auth, repo, emptyConfig);
  const layerDigest = await pushBlob(opts.auth, repo, sbom);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: SPDX_ARTIFACT_TYPE,
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: configDigest,
      size: emptyConfig.length,
    },
    layers: [
      {
        mediaType: SPDX_ARTIFACT_TYPE,
        digest: layerDigest,
        size: sbom.length,
        annotations: { "org.opencontainers.image.title": path.basename(opts.sbomPath) },
      },
    ],
    subject: {
      mediaType: opts.subjectMediaType,
      digest: opts.subjectDigest,
      size: opts.subjectSize,
    },
    annotations: {
      "org.opencontainers.image.created": new Date().toISOString(),
      "dev.image-factory.platform": opts.platform,
    },
  };
  const body = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(body);
  const tag = `${opts.subjectDigest.replace(":", "-")}.sbom`;
  for (const ref of [tag, digest]) {
    const put = await registryFetch(opts.auth, repo, `/v2/${repo}/manifests/${ref}`, {
      method: "PUT",
      body: new Uint8Array(body),
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    });
    if (put.status !== 201)
      throw new Error(
        `pushing the SBOM artifact to ${opts.auth.registry}/${repo}:${ref} failed: HTTP ${put.status} ${await put.text()}`,
      );
  }
  return `oci://${registryOf(opts.imageName)}/${repo}@${digest}`;
}

/** Reads a manifest's media type and size (needed for an artifact's `subject`). */
export async function headManifest(
  auth: RegistryAuth,
  imageName: string,
  digest: string,
): Promise<{ mediaType: string; size: number }> {
  const repo = repositoryOf(imageName);
  const accept = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
  ].join(", ");
  const res = await registryFetch(auth, repo, `/v2/${repo}/manifests/${digest}`, {
    method: "GET",
    headers: { accept },
  });
  if (!res.ok)
    throw new Error(`manifest ${auth.registry}/${repo}@${digest} not found: HTTP ${res.status}`);
  const buf = Buffer.from(await res.arrayBuffer());
  return {
    mediaType: (
      res.headers.get("content-type") ?? "application/vnd.oci.image.manifest.v1+json"
    ).split(";")[0],
    size: buf.length,
  };
}

/** Fetches an SBOM artifact back (`oci://registry/repo@digest`): what a user or a test does. */
export async function fetchSbomArtifact(uri: string, auth: RegistryAuth): Promise<unknown> {
  const m = /^oci:\/\/([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(uri);
  if (!m) throw new Error(`not an oci:// SBOM location: ${uri}`);
  const [, , repo, digest] = m;
  const res = await registryFetch(auth, repo, `/v2/${repo}/manifests/${digest}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  if (!res.ok) throw new Error(`SBOM artifact ${uri}: HTTP ${res.status}`);
  const manifest = (await res.json()) as { layers?: Array<{ digest: string }> };
  const layer = manifest.layers?.[0]?.digest;
  if (!layer) throw new Error(`SBOM artifact ${uri} has no layer`);
  const blob = await registryFetch(auth, repo, `/v2/${repo}/blobs/${layer}`);
  if (!blob.ok) throw new Error(`SBOM blob ${layer}: HTTP ${blob.status}`);
  return JSON.parse(Buffer.from(await blob.arrayBuffer()).toString("utf8"));
}

// ------------------------------------------------------------------------------------------------
// Reads and tags through crane (go-containerregistry): no hand-written client for these.
// ------------------------------------------------------------------------------------------------

/** Runs crane with this registry's credentials in a private Docker config. */
export async function crane(
  auth: RegistryAuth,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<string> {
  const bin = requireTool("crane");
  return withDockerConfig(auth, async (env) => {
    const full = insecureOf(auth) ? [...args, "--insecure"] : args;
    const r = await execTool(bin, full, {
      env,
      timeoutMs: opts.timeoutMs ?? 300_000,
      redact: [auth.password ?? ""],
    });
    if (r.code !== 0)
      throw new Error(
        `crane ${args[0]} failed against ${auth.registry}, exit ${r.code}: ${lastLines(r.stderr || r.stdout, 4)}`,
      );
    return r.stdout;
  });
}

export interface ManifestDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

/** The platform manifests a manifest list (index) holds, keyed `os/arch[/variant]`; attestation
 *  manifests (platform unknown/unknown) are left out. */
export async function indexPlatforms(
  auth: RegistryAuth,
  ref: string,
): Promise<Record<string, string>> {
  const manifest = JSON.parse(await crane(auth, ["manifest", ref])) as {
    manifests?: ManifestDescriptor[];
  };
  if (manifest.manifests === undefined)
    throw new Error(`${ref} is not a manifest list (no manifests[])`);
  const out: Record<string, string> = {};
  for (const m of manifest.manifests) {
    if (m.platform === undefined || m.platform.os === "unknown") continue;
    out[[m.platform.os, m.platform.architecture, m.platform.variant].filter((x) => x).join("/")] =
      m.digest;
  }
  return out;
}

/** The digest a tag points at now, or undefined when the tag does not exist. */
export async function digestOfTag(auth: RegistryAuth, ref: string): Promise<string | undefined> {
  try {
    return (await crane(auth, ["digest", ref])).trim();
  } catch (e) {
    if (
      /MANIFEST_UNKNOWN|NAME_UNKNOWN|not found|404/i.test(
        e instanceof Error ? e.message : String(e),
      )
    )
      return undefined;
    throw e;
  }
}

/** Whether the registry accepts these credentials for pushing to `repository`, asked the way a
 *  client does (Basic, or a bearer token for `pull,push`), before anything is built. Returns the
 *  problem in words, or undefined when the registry said yes. */
export async function credentialsProblem(
  auth: RegistryAuth,
  repository: string,
): Promise<string | undefined> {
  const base = `${insecureOf(auth) ? "http" : "https"}://${auth.registry}`;
  const basic = `Basic ${Buffer.from(`${auth.username ?? ""}:${auth.password ?? ""}`).toString("base64")}`;
  let res: Response;
  try {
    res = await fetch(`${base}/v2/`, { signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    return `registry ${auth.registry} is not reachable (${String((e as { cause?: { code?: unknown } }).cause?.code ?? e)})`;
  }
  if (res.status === 200) return undefined;
  if (res.status !== 401) return `registry ${auth.registry} answered HTTP ${res.status} on /v2/`;
  const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
  if (challenge.scheme === "basic") {
    const again = await fetch(`${base}/v2/`, {
      headers: { authorization: basic },
      signal: AbortSignal.timeout(15_000),
    });
    return again.status === 200
      ? undefined
      : `registry ${auth.registry} refused user ${auth.username ?? "(none)"}'s credentials (HTTP ${again.status})`;
  }
  const tokenUrl = checkedRealm(challenge.params.realm, auth);
  if (challenge.params.service) tokenUrl.searchParams.set("service", challenge.params.service);
  tokenUrl.searchParams.set("scope", `repository:${repository}:pull,push`);
  const t = await fetch(tokenUrl, {
    headers: { authorization: basic },
    signal: AbortSignal.timeout(15_000),
  });
  return t.ok
    ? undefined
    : `registry ${auth.registry} refused user ${auth.username ?? "(none)"}'s credentials for ${repository} (token service HTTP ${t.status})`;
}
