// Verify before promoting: what a stack that republishes another stack's image checks on the
// registry itself, instead of trusting the other stack's outputs. Every check reads a signed
// statement through the real cosign (evidence/signing/cosign.ts), with the key (or keyless
// identity) the promoting stack trusts:
//
//   - the signature on the manifest list's digest;
//   - the gates attestation on that digest: passed, naming that list, exactly the platform digests
//     the list holds, this repository, nothing left unrun, and every measured value judged again
//     against the promoting stack's own gates (the same rules as components/promotion.ts
//     `checkBinding`, on the attested predicate instead of a stack output);
//   - an SPDX SBOM attestation on every platform digest in the list;
//   - SLSA provenance on the list and on every platform digest, naming the commit being released.
//
// Every missing or bad piece is collected and reported at once, each naming the piece and the
// digest. No Pulumi here: the CLI (`npm run evidence -- verify`) and the promoting stack's dynamic
// resource (components/promotion.ts, through components/engineProcess.ts) both call verifyRelease.
import { mapLimit } from "./exec";
import { type GatesConfig } from "./gates";
import { indexPlatforms } from "./oci";
import { type InTotoStatement, verify, verifyAttestation } from "./signing/cosign";
import { PREDICATE_TYPES } from "./signing/predicates";
import { cosignOptions, listReferrers, registryAuth, signatureRefOf, trustOf } from "./trust";
import {
  COMMIT,
  DIGEST,
  gatesProblems,
  isRecord,
  provenanceProblems,
  sbomProblems,
  short,
} from "./verifyRules";

export * from "./trust";
export * from "./verifyRules";
export { mapLimit } from "./exec";

/** What signatures must verify with: a PEM public key (key and kms modes) or a keyless identity. */
export type VerifyTrust = { publicKeyPem: string } | { identity: string; issuer: string };

export interface VerifyRequest {
  /** Repository without tag or digest, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  /** The manifest list being promoted, `sha256:…`. */
  digest: string;
  /** What the source stack says the list holds (its `platformDigests` export); compared with the
   *  list the registry serves. Unset = not compared. */
  platformDigests?: Record<string, string>;
  /** The commit being released (40 hex): the provenance must name it. */
  expectedRevision: string;
  /** This stack's gates: the attested measurements are judged again against them. */
  gates: GatesConfig;
  trust: VerifyTrust;
  /** Require (and check) transparency-log inclusion. Keyless needs it. @default false */
  tlog?: boolean;
  registryUsername?: string;
  /** From the environment only (IMAGE_FACTORY_REGISTRY_TOKEN). */
  registryToken?: string;
}

export interface VerifyReport {
  /** `<imageName>@<digest>`. */
  imageRef: string;
  digest: string;
  /** Platform → digest, as the manifest list in the registry holds them. */
  platformDigests: Record<string, string>;
  /** Digest → the signature's referrer manifest (`<repo>@sha256:…`) found on it. */
  signatures: Record<string, string>;
  /** From the verified gates attestation. */
  gates: { passed: boolean; sourceRevision: string; evaluatedAt: string; checks: number };
  /** Digest → commit and builder its verified provenance names. */
  provenance: Record<string, { commit: string; builder: string }>;
  /** Platform → SPDX document name and package count of its verified SBOM attestation. */
  sboms: Record<string, { name: string; packages: number }>;
  /** What was checked, in words, for the log. */
  checked: string[];
  seconds: number;
}

/** A refusal: every problem found, each naming the piece (signature, gates attestation, SBOM
 *  attestation, provenance) and the digest. */
export class VerificationError extends Error {
  constructor(
    public readonly imageRef: string,
    public readonly problems: string[],
  ) {
    super(
      `refusing to promote ${imageRef}: ${problems.length} problem${problems.length === 1 ? "" : "s"} with its signature and attestations:\n  - ${problems.join("\n  - ")}`,
    );
    this.name = "VerificationError";
  }
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/** cosign's message up to its own log lines (the first line names what is missing or wrong). */
const firstLine = (e: unknown): string => message(e).split("\n")[0];

/** Verifies everything promotion needs on `<imageName>@<digest>`; throws a VerificationError
 *  naming every missing or bad piece. */
export async function verifyRelease(req: VerifyRequest): Promise<VerifyReport> {
  const started = Date.now();
  if (!DIGEST.test(req.digest))
    throw new Error(`verify: digest must be sha256:<64 hex>, got ${JSON.stringify(req.digest)}`);
  if (!COMMIT.test(req.expectedRevision)) {
    throw new Error(
      `verify: expectedRevision must be a full commit (40 hex), got ${JSON.stringify(req.expectedRevision)}`,
    );
  }
  const imageRef = `${req.imageName}@${req.digest}`;
  const auth = await registryAuth(req.imageName, req.registryUsername, req.registryToken);
  const opts = cosignOptions(auth, req.tlog ?? false);
  const trust = trustOf(req.trust);
  const problems: string[] = [];
  const checked: string[] = [];

  let listed: Record<string, string>;
  try {
    listed = await indexPlatforms(auth, imageRef);
  } catch (e) {
    throw new VerificationError(imageRef, [
      `manifest list ${req.digest}: cannot be read from the registry: ${firstLine(e)}`,
    ]);
  }
  if (Object.keys(listed).length === 0)
    problems.push(`manifest list ${req.digest} holds no platform image`);
  if (req.platformDigests !== undefined) {
    for (const p of [
      ...new Set([...Object.keys(listed), ...Object.keys(req.platformDigests)]),
    ].sort()) {
      if (listed[p] !== req.platformDigests[p]) {
        problems.push(
          `platform digests: the source stack exports ${p} = ${JSON.stringify(req.platformDigests[p] ?? null)}, but the manifest list ${short(req.digest)} holds ${JSON.stringify(listed[p] ?? null)}`,
        );
      }
    }
  }
  checked.push(
    `manifest list ${req.digest}: ${Object.entries(listed)
      .map(([p, d]) => `${p}=${short(d)}`)
      .join(", ")}`,
  );

  const report: VerifyReport = {
    imageRef,
    digest: req.digest,
    platformDigests: listed,
    signatures: {},
    gates: { passed: false, sourceRevision: "", evaluatedAt: "", checks: 0 },
    provenance: {},
    sboms: {},
    checked,
    seconds: 0,
  };
  const platforms = Object.keys(listed).sort();
  const predicatesOf = (sts: InTotoStatement[]): unknown[] => sts.map((s) => s.predicate);

  type Task = () => Promise<void>;
  const tasks: Task[] = [
    async () => {
      try {
        await verify(imageRef, trust, opts);
        checked.push(`signature on ${req.digest}`);
        const sig = signatureRefOf(await listReferrers(imageRef, auth));
        if (sig !== undefined) report.signatures[req.digest] = sig;
      } catch (e) {
        problems.push(`signature on ${req.digest}: ${firstLine(e)}`);
      }
    },
    async () => {
      try {
        const v = await verifyAttestation(imageRef, "gates", trust, opts);
        const preds = predicatesOf(v.statements);
        const found = gatesProblems(preds, {
          digest: req.digest,
          platformDigests: listed,
          repository: req.imageName,
          gates: req.gates,
        });
        problems.push(...found);
        const mine = preds.filter(isRecord).find((p) => p.indexDigest === req.digest);
        if (found.length === 0 && mine !== undefined) {
          report.gates = {
            passed: mine.passed === true,
            sourceRevision: String(mine.sourceRevision ?? ""),
            evaluatedAt: String(mine.evaluatedAt ?? ""),
            checks: Array.isArray(mine.checks) ? mine.checks.length : 0,
          };
          checked.push(
            `gates attestation on ${req.digest} (passed, ${report.gates.checks} checks judged again with this stack's gates)`,
          );
        }
      } catch (e) {
        problems.push(
          `gates attestation (${PREDICATE_TYPES.gates}) on ${req.digest}: ${firstLine(e)}`,
        );
      }
    },
    ...[req.digest, ...platforms.map((p) => listed[p])].map((d): Task => async () => {
      try {
        const v = await verifyAttestation(`${req.imageName}@${d}`, "slsaprovenance1", trust, opts);
        const preds = predicatesOf(v.statements);
        const found = provenanceProblems(d, preds, req.expectedRevision);
        problems.push(...found);
        if (found.length === 0) {
          const p = preds[0] as { runDetails?: { builder?: { id?: string } } };
          report.provenance[d] = {
            commit: req.expectedRevision,
            builder: String(p.runDetails?.builder?.id ?? ""),
          };
          checked.push(`provenance on ${d} (commit ${req.expectedRevision})`);
        }
      } catch (e) {
        problems.push(`provenance (${PREDICATE_TYPES.slsaprovenance1}) on ${d}: ${firstLine(e)}`);
      }
    }),
    ...platforms.map((p): Task => async () => {
      const d = listed[p];
      try {
        const v = await verifyAttestation(`${req.imageName}@${d}`, "spdxjson", trust, opts);
        const preds = predicatesOf(v.statements);
        const found = sbomProblems(p, d, preds);
        problems.push(...found);
        if (found.length === 0) {
          const doc = preds.find(isRecord) as { name?: string; packages?: unknown[] };
          report.sboms[p] = { name: String(doc.name ?? ""), packages: doc.packages?.length ?? 0 };
          checked.push(`SBOM attestation for ${p} on ${d} (${report.sboms[p].packages} packages)`);
        }
      } catch (e) {
        problems.push(
          `SBOM attestation (${PREDICATE_TYPES.spdxjson}) for ${p} on ${d}: ${firstLine(e)}`,
        );
      }
    }),
  ];
  // Two at a time: cosign is mostly waiting on the registry, and this machine has two cores.
  await mapLimit(tasks, 2, (t) => t());
  if (problems.length > 0) throw new VerificationError(imageRef, problems);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
