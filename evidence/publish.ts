// Publish: the only step that moves a tag a user pulls. It runs after the gates passed and refuses
// unless the manifest list it is about to tag holds exactly the platform digests the gates judged,
// then (when a signer is given) signs and attests, and only then points every tag at the list.
// A registry fault part-way leaves each tag either where it was or at this fully-evidenced digest;
// the next `pulumi up` finishes the job.
//
// Signing (docs/signing.md): the list's digest and every platform digest are signed; the list gets
// the gates attestation and SLSA provenance, each platform its SPDX SBOM and SLSA provenance. A
// piece that already verifies with this signer is not made again, so a rerun for new tags on the
// same digest costs only verification. The private key (key mode) arrives only through the
// environment (IMAGE_FACTORY_SIGNING_KEY), never in the request file, and cosign gets it as a 0600
// file it imports and deletes (evidence/signing/cosign.ts).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execTool, findTool, lastLines, toolBinDir } from "./exec";
import { type BoundGateResults } from "./gates";
import {
  type RegistryAuth,
  crane,
  indexPlatforms,
  isLoopbackRegistry,
  probeInsecure,
  registryOf,
} from "./oci";
import { type Signer, type Trust, attest, sign, verify, verifyAttestation } from "./signing/cosign";
import {
  type AttestationType,
  COSIGN_SIGN_PREDICATE_TYPE,
  PREDICATE_TYPES,
  gatesPredicate,
  slsaProvenance,
} from "./signing/predicates";
import { cosignOptions, listReferrers, mapLimit, registryAuth, signatureRefOf } from "./verify";

/** What the provenance says about the build (everything but what the publish step measures itself:
 *  base image digests, BuildKit versions, the finish time). */
export interface ProvenanceRequest {
  /** Source repository URL, e.g. `https://github.com/acme/image-factory`. */
  repository: string;
  /** Git ref built, e.g. `refs/heads/main`. */
  ref: string;
  /** Full commit SHA. */
  commit: string;
  /** Dockerfile path relative to the repository, e.g. `app/Dockerfile`. */
  dockerfile: string;
  /** Build arguments (secrets never: they are build secrets, not arguments). */
  buildArgs: Record<string, string>;
  secretBuildArgs?: string[];
  /** The base image as the build resolved it (the `baseImage` config, else the Dockerfile's
   *  `BASE_IMAGE` default); its per-platform digest is resolved here with `crane digest --platform`. */
  baseImage: string;
  /** Pulumi stack, e.g. `dev`. */
  stack: string;
  /** Platform → buildx builder that built it; asked for its BuildKit version. */
  builders: Record<string, string>;
  /** CI run URL, or `<stack>/<startedOn>`. */
  invocationId: string;
  /** When the `pulumi up` that publishes started (RFC 3339). */
  startedOn: string;
}

export interface SigningRequest {
  mode: "key" | "kms" | "keyless";
  /** Upload to / require the public transparency log. @default false */
  tlog?: boolean;
  /** kms: `awskms:///arn:aws:kms:…`. */
  keyRef?: string;
  /** kms: the key's public key, to verify what exists without calling KMS (key mode derives it
   *  from the private key). */
  publicKeyPem?: string;
  /** keyless: the certificate identity and its OIDC issuer. */
  identity?: string;
  issuer?: string;
  /** Platform → the evidence run's SPDX SBOM file (EvidenceResult.platforms[p].sbomPath). */
  sbomPaths: Record<string, string>;
  provenance: ProvenanceRequest;
}

export interface PublishRequest {
  imageName: string;
  /** `imageName:tag@sha256:…` of the manifest list docker-build pushed (an immutable sha tag). */
  indexRef: string;
  /** Tag names (no repository) to point at the list. */
  tags: string[];
  gateResults: BoundGateResults;
  registryUsername?: string;
  /** From the environment only. */
  registryToken?: string;
  /** Sign and attest before any tag moves. Unset = unsigned (a stack without a signer). */
  signing?: SigningRequest;
  /** key mode's PKCS#8 PEM: from the environment only (IMAGE_FACTORY_SIGNING_KEY). */
  signingKey?: string;
}

export interface SigningReport {
  /** Seconds the signing step took (verification of what exists included). */
  seconds: number;
  /** `<digest> <piece>` made by this run. */
  created: string[];
  /** `<digest> <piece>` that already verified with this signer, left alone. */
  reused: string[];
}

export interface PublishResult {
  digest: string;
  /** The gate results, now naming the manifest list they vouch for. */
  gateResults: BoundGateResults;
  /** Full references written. */
  tags: string[];
  /** Digest (list and platforms) → its signature's referrer manifest `<repo>@sha256:…`. */
  signatures: Record<string, string>;
  signing?: SigningReport;
}

/** Why the judged results cannot vouch for this list, or undefined when they can. */
export function bindingProblem(
  gate: BoundGateResults,
  imageName: string,
  listed: Record<string, string>,
): string | undefined {
  if (!gate.passed)
    return `the gates did not pass (failed: ${gate.failed.join(", ") || "-"}; not run: ${gate.notRun.join(", ") || "-"})`;
  if (gate.imageName !== imageName)
    return `the gate results judged ${gate.imageName}, not ${imageName}`;
  const judged = gate.platformDigests;
  const platforms = new Set([...Object.keys(judged), ...Object.keys(listed)]);
  for (const p of [...platforms].sort()) {
    if (judged[p] !== listed[p])
      return `platform ${p}: the list holds ${listed[p] ?? "nothing"} but the gates judged ${judged[p] ?? "nothing"}`;
  }
  return undefined;
}

/** One thing a digest must carry: the plain signature or an attestation (an SBOM names the
 *  platform it describes). */
export interface Piece {
  type: "signature" | AttestationType;
  platform?: string;
}

/** What each digest carries. The list: its signature, the gates, provenance, and every platform's
 *  SBOM (admission controllers verify the digest a pod names, which is the list's). Each platform:
 *  its signature, its SBOM and provenance. */
export function piecesFor(kind: "index" | "platform", platforms: string[]): Piece[] {
  return kind === "index"
    ? [
        { type: "signature" },
        { type: "gates" },
        { type: "slsaprovenance1" },
        ...platforms.map((p): Piece => ({ type: "spdxjson", platform: p })),
      ]
    : [
        { type: "signature" },
        { type: "spdxjson", platform: platforms[0] },
        { type: "slsaprovenance1" },
      ];
}

const PIECE_TYPE: Record<Piece["type"], string> = {
  signature: COSIGN_SIGN_PREDICATE_TYPE,
  gates: PREDICATE_TYPES.gates,
  slsaprovenance1: PREDICATE_TYPES.slsaprovenance1,
  spdxjson: PREDICATE_TYPES.spdxjson,
};

/** An SPDX document's `documentNamespace` (unique per Syft run): which SBOM an attestation holds. */
function namespaceOf(doc: unknown): string | undefined {
  const ns =
    typeof doc === "object" && doc !== null
      ? (doc as { documentNamespace?: unknown }).documentNamespace
      : undefined;
  return typeof ns === "string" ? ns : undefined;
}

/** The BuildKit version a buildx builder reports (`docker buildx inspect <builder>`). */
export async function buildkitVersionOf(builder: string): Promise<string> {
  const own = path.join(toolBinDir(), "docker-buildx");
  const candidates = [
    own,
    ...(process.env.PATH ?? "")
      .split(path.delimiter)
      .filter((d) => d !== "")
      .map((d) => path.join(d, "docker-buildx")),
  ];
  const buildx = candidates.find((c) => fs.existsSync(c));
  const docker = findTool("docker");
  const [file, args] =
    buildx !== undefined
      ? [buildx, ["inspect", builder]]
      : docker !== undefined
        ? [docker, ["buildx", "inspect", builder]]
        : [undefined, []];
  if (file === undefined)
    throw new Error(
      `provenance: neither docker-buildx nor docker is installed, so builder ${builder} cannot be asked for its BuildKit version (scripts/install-go-tools.sh docker-buildx)`,
    );
  // The builders live in the user's buildx config ($HOME/.docker/buildx, or DOCKER_CONFIG/BUILDX_CONFIG).
  const env: Record<string, string> = {};
  for (const k of ["DOCKER_CONFIG", "BUILDX_CONFIG"])
    if (process.env[k] !== undefined) env[k] = process.env[k] as string;
  const r = await execTool(file, args, { env, timeoutMs: 60_000 });
  const v = /BuildKit version:\s*(\S+)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || v === undefined)
    throw new Error(
      `provenance: \`docker buildx inspect ${builder}\` gave no BuildKit version (exit ${r.code}): ${lastLines(r.stderr || r.stdout, 3)}`,
    );
  return v;
}

/** `repo[:tag][@sha256:…]` → the reference without its digest. */
export function withoutDigest(ref: string): string {
  return ref.replace(/@sha256:[0-9a-f]{64}$/, "");
}

/** The platform's manifest digest of the base image (`crane digest --platform`). */
export async function baseImageDigest(
  baseImage: string,
  platform: string,
  image: RegistryAuth,
): Promise<string> {
  const registry = registryOf(baseImage);
  const auth: RegistryAuth =
    registry === image.registry
      ? image
      : {
          registry,
          insecure: isLoopbackRegistry(registry) ? await probeInsecure(registry) : false,
        };
  const d = (await crane(auth, ["digest", "--platform", platform, baseImage])).trim();
  if (!/^sha256:[0-9a-f]{64}$/.test(d))
    throw new Error(
      `provenance: crane digest --platform ${platform} ${baseImage} printed ${JSON.stringify(d)}`,
    );
  return d;
}

/** Signs and attests the list and its platform images (what is missing only). Returns digest →
 *  signature ref and what was made or reused. */
export async function signAndAttest(
  req: PublishRequest & { signing: SigningRequest },
  digest: string,
  listed: Record<string, string>,
  auth: RegistryAuth,
): Promise<{ signatures: Record<string, string>; report: SigningReport }> {
  const started = Date.now();
  const s = req.signing;
  const tlog = s.tlog ?? false;
  let signer: Signer;
  let trust: Trust;
  if (s.mode === "key") {
    const pem = req.signingKey ?? "";
    if (!/-----BEGIN (EC |)PRIVATE KEY-----/.test(pem)) {
      throw new Error(
        "signing: key mode needs the private key in IMAGE_FACTORY_SIGNING_KEY (a PEM private key); it was not set",
      );
    }
    signer = { mode: "key", privateKeyPem: pem };
    trust = {
      publicKeyPem: crypto.createPublicKey(pem).export({ type: "spki", format: "pem" }).toString(),
    };
  } else if (s.mode === "kms") {
    if (s.keyRef === undefined) throw new Error("signing: kms mode needs keyRef (awskms:///…)");
    signer = { mode: "kms", keyRef: s.keyRef };
    trust =
      s.publicKeyPem !== undefined && s.publicKeyPem !== ""
        ? { publicKeyPem: s.publicKeyPem }
        : { keyRef: s.keyRef };
  } else {
    if (s.identity === undefined || s.issuer === undefined)
      throw new Error("signing: keyless mode needs identity and issuer");
    signer = { mode: "keyless" };
    trust = { identity: s.identity, issuer: s.issuer };
  }
  const opts = cosignOptions(auth, tlog);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-attest-"));
  fs.chmodSync(dir, 0o700);
  const created: string[] = [];
  const reused: string[] = [];
  const signatures: Record<string, string> = {};

  // Measured once, only when some digest still needs provenance.
  let context:
    | Promise<{
        bases: Record<string, string>;
        versions: Record<string, string>;
        finishedOn: string;
      }>
    | undefined;
  const provenanceContext = (): Promise<{
    bases: Record<string, string>;
    versions: Record<string, string>;
    finishedOn: string;
  }> =>
    (context ??= (async () => {
      const platforms = Object.keys(listed).sort();
      const bases: Record<string, string> = {};
      for (const p of platforms) bases[p] = await baseImageDigest(s.provenance.baseImage, p, auth);
      const versions: Record<string, string> = {};
      for (const b of [...new Set(platforms.map((p) => s.provenance.builders[p] ?? "default"))])
        versions[b] = await buildkitVersionOf(b);
      // finishedOn: the index was pushed and judged; nothing of the build happens after this.
      return { bases, versions, finishedOn: new Date().toISOString() };
    })());

  const predicateFile = async (
    target: string,
    platforms: string[],
    piece: Piece["type"],
    platform?: string,
  ): Promise<string> => {
    const file = path.join(dir, `${target.replace(":", "-")}-${piece}.json`);
    let body: unknown;
    if (piece === "gates") {
      const g = req.gateResults;
      body = gatesPredicate({
        indexDigest: digest,
        platformDigests: g.platformDigests,
        sourceRevision: g.sourceRevision,
        repository: req.imageName,
        results: g,
      });
    } else if (piece === "slsaprovenance1") {
      const c = await provenanceContext();
      const p = s.provenance;
      const builders = [...new Set(platforms.map((pl) => p.builders[pl] ?? "default"))];
      body = slsaProvenance({
        repository: p.repository,
        ref: p.ref,
        commit: p.commit,
        dockerfile: p.dockerfile,
        platforms,
        buildArgs: p.buildArgs,
        secretBuildArgs: p.secretBuildArgs,
        // One entry per platform: the base manifest that platform's build resolved.
        baseImages: platforms.map((pl) => ({
          ref: `${withoutDigest(p.baseImage)}?platform=${pl}`,
          digest: c.bases[pl],
        })),
        stack: p.stack,
        builder: builders.join("+"),
        buildkitVersion: [...new Set(builders.map((b) => c.versions[b]))].join("+"),
        invocationId: p.invocationId,
        startedOn: p.startedOn,
        finishedOn: c.finishedOn > p.startedOn ? c.finishedOn : p.startedOn,
      });
    } else if (piece === "spdxjson") {
      const p = platform ?? platforms[0];
      const sbom = s.sbomPaths[p];
      if (sbom === undefined || !fs.existsSync(sbom)) {
        throw new Error(
          `signing: the SPDX SBOM of ${p} (${sbom ?? "no path given"}) does not exist; rerun the evidence (pulumi up --replace on the Evidence resource)`,
        );
      }
      return sbom;
    }
    fs.writeFileSync(file, JSON.stringify(body, null, 2), { mode: 0o600 });
    return file;
  };

  const targets: Array<{ digest: string; platforms: string[]; kind: "index" | "platform" }> = [
    { digest, platforms: Object.keys(listed).sort(), kind: "index" },
    ...Object.keys(listed)
      .sort()
      .map((p) => ({ digest: listed[p], platforms: [p], kind: "platform" as const })),
  ];
  try {
    await mapLimit(targets, 2, async (t) => {
      const ref = `${req.imageName}@${t.digest}`;
      const existing = await listReferrers(ref, auth);
      // What already verifies with this signer, per type: asked once, only for types that exist.
      const verified = new Map<Piece["type"], Promise<unknown[] | undefined>>();
      const verifiedOf = (type: Piece["type"]): Promise<unknown[] | undefined> => {
        if (!existing.some((r) => r.predicateType === PIECE_TYPE[type]))
          return Promise.resolve(undefined);
        let v = verified.get(type);
        if (v === undefined) {
          v = (
            type === "signature"
              ? verify(ref, trust, opts)
              : verifyAttestation(ref, type, trust, opts)
          ).then(
            (r) => r.statements.map((st) => st.predicate),
            () => undefined,
          );
          verified.set(type, v);
        }
        return v;
      };
      let signatureRef: string | undefined;
      for (const piece of piecesFor(t.kind, t.platforms)) {
        const label = `${t.digest} ${piece.type}${t.kind === "index" && piece.platform !== undefined ? `[${piece.platform}]` : ""}`;
        const have = await verifiedOf(piece.type);
        let ok = have !== undefined && have.length > 0;
        if (ok && t.kind === "index" && piece.type === "spdxjson" && piece.platform !== undefined) {
          // The list carries one SBOM per platform: this platform's is there when its document is.
          const file = s.sbomPaths[piece.platform];
          const ns =
            file !== undefined && fs.existsSync(file)
              ? namespaceOf(JSON.parse(fs.readFileSync(file, "utf8")))
              : undefined;
          ok =
            ns !== undefined
              ? (have ?? []).some((d) => namespaceOf(d) === ns)
              : (have ?? []).length >= t.platforms.length;
        }
        if (ok) {
          reused.push(label);
          if (piece.type === "signature") signatureRef = signatureRefOf(existing);
          continue;
        }
        const made =
          piece.type === "signature"
            ? await sign(ref, { ...opts, signer })
            : await attest(
                ref,
                {
                  predicatePath: await predicateFile(
                    t.digest,
                    t.platforms,
                    piece.type,
                    piece.platform,
                  ),
                  type: piece.type,
                },
                { ...opts, signer },
              );
        created.push(label);
        if (piece.type === "signature") signatureRef = made.signatureRef;
      }
      if (signatureRef !== undefined) signatures[t.digest] = signatureRef;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return {
    signatures,
    report: {
      seconds: (Date.now() - started) / 1000,
      created: created.sort(),
      reused: reused.sort(),
    },
  };
}

export async function publish(req: PublishRequest): Promise<PublishResult> {
  const m = /@(sha256:[0-9a-f]{64})$/.exec(req.indexRef);
  if (m === null)
    throw new Error(
      `publish: indexRef must end in @sha256:<64 hex>, got ${JSON.stringify(req.indexRef)}`,
    );
  const digest = m[1];
  const auth = await registryAuth(req.imageName, req.registryUsername, req.registryToken);
  const byDigest = `${req.imageName}@${digest}`;
  const listed = await indexPlatforms(auth, byDigest);
  const problem = bindingProblem(req.gateResults, req.imageName, listed);
  if (problem !== undefined)
    throw new Error(`publish ${byDigest}: refused, ${problem}. No tag was moved.`);
  let signatures: Record<string, string> = {};
  let report: SigningReport | undefined;
  if (req.signing !== undefined) {
    try {
      ({ signatures, report } = await signAndAttest(
        { ...req, signing: req.signing },
        digest,
        listed,
        auth,
      ));
    } catch (e) {
      throw new Error(
        `publish ${byDigest}: signing failed, so no tag was moved: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  const written: string[] = [];
  for (const tag of req.tags) {
    await crane(auth, ["tag", byDigest, tag]);
    written.push(`${req.imageName}:${tag}`);
  }
  return {
    digest,
    gateResults: { ...req.gateResults, digest },
    tags: written,
    signatures,
    signing: report,
  };
}
