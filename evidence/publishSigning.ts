// Signing and attesting a published list and its platform images (docs/signing.md): what each
// digest must carry, what already verifies with this signer (left alone), and what is made.
//
// Cost: every piece is one `cosign sign`/`attest`; per digest one `cosign tree` before (which also
// finds what to reuse) and one after, and one key import for the whole publish
// (withSigningSession). The digests are worked on at the same time, each signed as soon as its own
// predicates are ready; within a digest the pieces stay sequential (see withSigningSession).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mapLimit } from "./exec";
import { type RegistryAuth } from "./oci";
import { type ProvenanceContext, provenanceContext, withoutDigest } from "./provenanceContext";
import type { PublishRequest, SigningReport, SigningRequest } from "./publish";
import {
  type BundleRequest,
  type Signer,
  type Trust,
  verify,
  verifyAttestation,
  withSigningSession,
} from "./signing/cosign";
import {
  type AttestationType,
  COSIGN_SIGN_PREDICATE_TYPE,
  PREDICATE_TYPES,
  gatesPredicate,
  slsaProvenance,
} from "./signing/predicates";
import { cosignOptions, listReferrers, signatureRefOf } from "./trust";

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

/** The signer and the trust that checks what exists, from the request (key mode: the private key
 *  arrives only through the environment). */
function signerOf(
  s: SigningRequest,
  signingKey: string | undefined,
): { signer: Signer; trust: Trust } {
  if (s.mode === "key") {
    const pem = signingKey ?? "";
    if (!/-----BEGIN (EC |)PRIVATE KEY-----/.test(pem)) {
      throw new Error(
        "signing: key mode needs the private key in IMAGE_FACTORY_SIGNING_KEY (a PEM private key); it was not set",
      );
    }
    return {
      signer: { mode: "key", privateKeyPem: pem },
      trust: {
        publicKeyPem: crypto
          .createPublicKey(pem)
          .export({ type: "spki", format: "pem" })
          .toString(),
      },
    };
  }
  if (s.mode === "kms") {
    if (s.keyRef === undefined) throw new Error("signing: kms mode needs keyRef (awskms:///…)");
    return {
      signer: { mode: "kms", keyRef: s.keyRef },
      trust:
        s.publicKeyPem !== undefined && s.publicKeyPem !== ""
          ? { publicKeyPem: s.publicKeyPem }
          : { keyRef: s.keyRef },
    };
  }
  if (s.identity === undefined || s.issuer === undefined)
    throw new Error("signing: keyless mode needs identity and issuer");
  return { signer: { mode: "keyless" }, trust: { identity: s.identity, issuer: s.issuer } };
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
  const { signer, trust } = signerOf(s, req.signingKey);
  const opts = cosignOptions(auth, s.tlog ?? false);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-attest-"));
  fs.chmodSync(dir, 0o700);
  const created: string[] = [];
  const reused: string[] = [];
  const signatures: Record<string, string> = {};

  // Measured once, only when some digest still needs provenance.
  let context: Promise<ProvenanceContext> | undefined;
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
      const p = s.provenance;
      const c = await (context ??= provenanceContext(
        p.baseImage,
        p.builders,
        Object.keys(listed).sort(),
        auth,
      ));
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
    // Every digest at once, in one cosign session (one key import): what it lacks, then that.
    await withSigningSession({ ...opts, signer }, (sign) =>
      mapLimit(targets, targets.length, async (t) => {
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
        const missing: Array<{ piece: Piece; label: string }> = [];
        let signatureRef: string | undefined;
        for (const piece of piecesFor(t.kind, t.platforms)) {
          const label = `${t.digest} ${piece.type}${t.kind === "index" && piece.platform !== undefined ? `[${piece.platform}]` : ""}`;
          const have = await verifiedOf(piece.type);
          let ok = have !== undefined && have.length > 0;
          if (
            ok &&
            t.kind === "index" &&
            piece.type === "spdxjson" &&
            piece.platform !== undefined
          ) {
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
          } else missing.push({ piece, label });
        }
        const requests = await Promise.all(
          missing.map(async ({ piece }): Promise<BundleRequest> =>
            piece.type === "signature"
              ? undefined
              : {
                  path: await predicateFile(t.digest, t.platforms, piece.type, piece.platform),
                  type: piece.type,
                },
          ),
        );
        // The listing above stands in for the session's own first `cosign tree`.
        const made = await sign({ imageRef: ref, requests, before: existing });
        missing.forEach(({ piece, label }, i) => {
          created.push(label);
          if (piece.type === "signature") signatureRef = made[i].signatureRef;
        });
        if (signatureRef !== undefined) signatures[t.digest] = signatureRef;
      }),
    );
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
