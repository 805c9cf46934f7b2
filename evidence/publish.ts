// Publish: the only step that moves a tag a user pulls. It runs after the gates passed and refuses
// unless the manifest list it is about to tag holds exactly the platform digests the gates judged,
// then (when a signer is given) signs and attests, and only then points every tag at the list.
// A registry fault part-way leaves each tag either where it was or at this fully-evidenced digest;
// the next `pulumi up` finishes the job.
import { type BoundGateResults } from "./gates";
import { type RegistryAuth, crane, indexPlatforms, probeInsecure, registryOf } from "./oci";

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
}

export interface PublishResult {
  digest: string;
  /** The gate results, now naming the manifest list they vouch for. */
  gateResults: BoundGateResults;
  /** Full references written. */
  tags: string[];
}

/** Why the judged results cannot vouch for this list, or undefined when they can. */
export function bindingProblem(gate: BoundGateResults, imageName: string, listed: Record<string, string>): string | undefined {
  if (!gate.passed) return `the gates did not pass (failed: ${gate.failed.join(", ") || "-"}; not run: ${gate.notRun.join(", ") || "-"})`;
  if (gate.imageName !== imageName) return `the gate results judged ${gate.imageName}, not ${imageName}`;
  const judged = gate.platformDigests;
  const platforms = new Set([...Object.keys(judged), ...Object.keys(listed)]);
  for (const p of [...platforms].sort()) {
    if (judged[p] !== listed[p]) return `platform ${p}: the list holds ${listed[p] ?? "nothing"} but the gates judged ${judged[p] ?? "nothing"}`;
  }
  return undefined;
}

export async function publish(req: PublishRequest): Promise<PublishResult> {
  const m = /@(sha256:[0-9a-f]{64})$/.exec(req.indexRef);
  if (m === null) throw new Error(`publish: indexRef must end in @sha256:<64 hex>, got ${JSON.stringify(req.indexRef)}`);
  const digest = m[1];
  const registry = registryOf(req.imageName);
  const auth: RegistryAuth = { registry, username: req.registryUsername, password: req.registryToken, insecure: await probeInsecure(registry) };
  const byDigest = `${req.imageName}@${digest}`;
  const problem = bindingProblem(req.gateResults, req.imageName, await indexPlatforms(auth, byDigest));
  if (problem !== undefined) throw new Error(`publish ${byDigest}: refused, ${problem}. No tag was moved.`);
  const written: string[] = [];
  for (const tag of req.tags) {
    await crane(auth, ["tag", byDigest, tag]);
    written.push(`${req.imageName}:${tag}`);
  }
  return { digest, gateResults: { ...req.gateResults, digest }, tags: written };
}
