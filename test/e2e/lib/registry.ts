// A small client for the Docker Registry HTTP API v2 with basic auth, as served by the local
// distribution registry (scripts/registry.sh): tags, manifests, config blobs, manifest lists.
// Used by end-to-end tests to check what a push really left in the registry.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const MEDIA = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
} as const;

const ACCEPT_ANY = [MEDIA.dockerList, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.ociManifest].join(
  ", ",
);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ManifestList {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface FetchedManifest<T> {
  digest: string;
  mediaType: string;
  size: number;
  body: T;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    Labels?: Record<string, string> | null;
    Healthcheck?: { Test?: string[] };
  };
  rootfs: { type: string; diff_ids: string[] };
}

/** `linux/arm/v7` → `{ os: "linux", architecture: "arm", variant: "v7" }`; errors name the value. */
export function parsePlatform(platform: string): Platform {
  const parts = platform.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) {
    throw new Error(`platform '${platform}' is not os/arch[/variant]`);
  }
  const [osName, architecture, variant] = parts;
  return variant === undefined
    ? { os: osName, architecture }
    : { os: osName, architecture, variant };
}

export class RegistryError extends Error {
  constructor(
    message: string,
    public readonly status: number,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface RegistryAuth {
  username: string;
  password: string;
}

/** The local registry's address and credential written by scripts/registry.sh. */
export const LOCAL_REGISTRY = "127.0.0.1:5000";
export const LOCAL_REGISTRY_USER = "factory";

export function cacheDir(): string {
  return process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory");
}

export function localRegistryAuth(): RegistryAuth {
  const file = path.join(cacheDir(), "registry", "password");
  if (!fs.existsSync(file)) {
    throw new Error(`registry password file ${file} is missing: run scripts/registry.sh`);
  }
  return { username: LOCAL_REGISTRY_USER, password: fs.readFileSync(file, "utf8").trim() };
}

/** Splits `host:port/repo/name:tag` (or `@sha256:…`) into its parts. */
export function parseRef(ref: string): { host: string; repository: string; reference: string } {
  const at = ref.indexOf("@");
  let name = ref;
  let reference: string;
  if (at >= 0) {
    name = ref.slice(0, at);
    reference = ref.slice(at + 1);
  } else {
    const colon = ref.lastIndexOf(":");
    if (colon > ref.lastIndexOf("/")) {
      name = ref.slice(0, colon);
      reference = ref.slice(colon + 1);
    } else {
      reference = "latest";
    }
  }
  const slash = name.indexOf("/");
  if (slash < 0) throw new Error(`image reference '${ref}' has no registry host`);
  return { host: name.slice(0, slash), repository: name.slice(slash + 1), reference };
}

export class RegistryClient {
  constructor(
    /** host:port, spoken to over plain HTTP (loopback only). */
    public readonly host: string = LOCAL_REGISTRY,
    private readonly auth: RegistryAuth = localRegistryAuth(),
  ) {
    if (!/^(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(host)) {
      throw new Error(
        `registry host '${host}' is not on loopback; e2e tests only talk to loopback`,
      );
    }
  }

  private async request(
    method: string,
    urlPath: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<Response> {
    return fetch(`http://${this.host}/v2/${urlPath}`, {
      method,
      headers: { ...this.authorization(), ...headers },
      body,
    });
  }

  private authorization(): Record<string, string> {
    const basic = Buffer.from(`${this.auth.username}:${this.auth.password}`).toString("base64");
    return { Authorization: `Basic ${basic}` };
  }

  private async fail(res: Response, what: string): Promise<never> {
    const text = await res.text().catch(() => "");
    throw new RegistryError(
      `registry ${this.host}: ${what} answered HTTP ${res.status}: ${text.slice(0, 300)}`,
      res.status,
    );
  }

  /** Checks the credential: resolves when GET /v2/ answers 200. */
  async ping(): Promise<void> {
    const res = await this.request("GET", "");
    if (res.status !== 200) await this.fail(res, "GET /v2/");
  }

  /** Tags of a repository, sorted; [] when the repository does not exist. */
  async tags(repository: string): Promise<string[]> {
    const res = await this.request("GET", `${repository}/tags/list?n=10000`);
    if (res.status === 404) return [];
    if (!res.ok) await this.fail(res, `tags of ${repository}`);
    const body = (await res.json()) as { tags?: string[] | null };
    return [...(body.tags ?? [])].sort();
  }

  /** Tag → manifest digest, for every tag of a repository (to compare before/after a push). */
  async tagDigests(repository: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const tag of await this.tags(repository)) {
      out[tag] = (await this.head(repository, tag)) ?? "missing";
    }
    return out;
  }

  /** The digest a tag points at, or undefined when it does not exist. */
  async head(repository: string, reference: string): Promise<string | undefined> {
    const res = await this.request("HEAD", `${repository}/manifests/${reference}`, {
      Accept: ACCEPT_ANY,
    });
    if (res.status === 404) return undefined;
    if (!res.ok) await this.fail(res, `HEAD ${repository}:${reference}`);
    return res.headers.get("docker-content-digest") ?? undefined;
  }

  async manifest<T = ImageManifest | ManifestList>(
    repository: string,
    reference: string,
  ): Promise<FetchedManifest<T>> {
    const res = await this.request("GET", `${repository}/manifests/${reference}`, {
      Accept: ACCEPT_ANY,
    });
    if (!res.ok) await this.fail(res, `manifest ${repository}:${reference}`);
    const text = await res.text();
    const body = JSON.parse(text) as T & { mediaType?: string };
    return {
      digest: res.headers.get("docker-content-digest") ?? "",
      mediaType: body.mediaType ?? res.headers.get("content-type") ?? "",
      size: Buffer.byteLength(text),
      body,
    };
  }

  imageManifest(repository: string, reference: string): Promise<FetchedManifest<ImageManifest>> {
    const kinds = [MEDIA.dockerManifest, MEDIA.ociManifest];
    return this.manifestOf(repository, reference, kinds, "a single-platform image manifest");
  }

  manifestList(repository: string, reference: string): Promise<FetchedManifest<ManifestList>> {
    return this.manifestOf(
      repository,
      reference,
      [MEDIA.dockerList, MEDIA.ociIndex],
      "a manifest list",
    );
  }

  /** The manifest at `reference`, refused (naming `what` was expected) unless of one of `kinds`. */
  private async manifestOf<T>(
    repository: string,
    reference: string,
    kinds: string[],
    what: string,
  ): Promise<FetchedManifest<T>> {
    const m = await this.manifest<T>(repository, reference);
    if (!kinds.includes(m.mediaType))
      throw new Error(`${repository}:${reference} is a ${m.mediaType}, not ${what}`);
    return m;
  }

  async blobJson<T>(repository: string, digest: string): Promise<T> {
    const res = await this.request("GET", `${repository}/blobs/${digest}`);
    if (!res.ok) await this.fail(res, `blob ${repository}@${digest}`);
    return (await res.json()) as T;
  }

  /** The image config (architecture, os, variant, user, labels) of a single-platform image. */
  async imageConfig(repository: string, reference: string): Promise<ImageConfig> {
    const m = await this.imageManifest(repository, reference);
    return this.blobJson<ImageConfig>(repository, m.body.config.digest);
  }

  /** Uploads a blob in one request (POST, then PUT with the digest); resolves to its digest. */
  async pushBlob(repository: string, content: string): Promise<string> {
    const digest = `sha256:${crypto.createHash("sha256").update(content).digest("hex")}`;
    const start = await this.request("POST", `${repository}/blobs/uploads/`);
    if (start.status !== 202) await this.fail(start, `POST ${repository}/blobs/uploads/`);
    const location = new URL(start.headers.get("location") ?? "", `http://${this.host}`);
    if (location.host !== this.host)
      throw new Error(`registry ${this.host}: upload location ${location.href} is elsewhere`);
    location.searchParams.set("digest", digest);
    const res = await fetch(location, {
      method: "PUT",
      headers: { ...this.authorization(), "Content-Type": "application/octet-stream" },
      body: content,
    });
    if (res.status !== 201) await this.fail(res, `PUT blob ${repository}@${digest}`);
    return digest;
  }

  /** Pushes a manifest under a tag or digest; resolves to the digest the registry answers. */
  async putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    body: string,
  ): Promise<string> {
    const res = await this.request(
      "PUT",
      `${repository}/manifests/${reference}`,
      { "Content-Type": mediaType },
      body,
    );
    if (res.status !== 201) await this.fail(res, `PUT ${repository}:${reference}`);
    return res.headers.get("docker-content-digest") ?? "";
  }

  /** Deletes a manifest by digest (the registry runs with delete enabled). */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    const res = await this.request("DELETE", `${repository}/manifests/${digest}`);
    if (res.status !== 202 && res.status !== 404)
      await this.fail(res, `DELETE ${repository}@${digest}`);
  }
}
