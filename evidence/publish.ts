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
import { type BoundGateResults } from "./gates";
import { mapLimit } from "./exec";
import { crane, indexPlatforms } from "./oci";
import { signAndAttest } from "./publishSigning";
import { registryAuth } from "./trust";

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
  // Each tag write is one small manifest PUT; any order leaves every tag at this digest or where it was.
  await mapLimit(req.tags, 4, (tag) => crane(auth, ["tag", byDigest, tag]));
  const written = req.tags.map((tag) => `${req.imageName}:${tag}`);
  return {
    digest,
    gateResults: { ...req.gateResults, digest },
    tags: written,
    signatures,
    signing: report,
  };
}
