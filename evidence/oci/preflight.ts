// Questions asked of a registry before anything is built: does it speak TLS, and does it accept
// these credentials for pushing. They stay on fetch, not crane: the answer must name the HTTP
// status (or the TLS error) precisely, and a Bearer challenge's realm must be checked before the
// password is sent anywhere, which crane (like any Docker client) does not do.
import { type RegistryAuth, insecureOf } from "./auth";
import { isLoopbackRegistry } from "../reference";

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

/** `WWW-Authenticate: Bearer realm="…",service="…"` → scheme and parameters. */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const [scheme, ...rest] = header.split(" ");
  const params: Record<string, string> = {};
  for (const m of rest.join(" ").matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme: scheme.toLowerCase(), params };
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
