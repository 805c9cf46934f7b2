// Reading what cosign prints back into in-toto statements: DSSE envelopes (verify-attestation),
// plain statements, and cosign v3's `verify --output json` shape.
import { COSIGN_SIGN_PREDICATE_TYPE } from "./predicates";
import type { InTotoStatement } from "./types";

export function decodeStatement(json: string, source: string): InTotoStatement {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new Error(
      `cosign printed something that is not JSON for ${source}: ${(e as Error).message}`,
    );
  }
  const o = parsed as Record<string, unknown>;
  // verify-attestation prints DSSE envelopes ({payloadType, payload: base64 statement, signatures}).
  if (typeof o.payload === "string") {
    return decodeStatement(Buffer.from(o.payload, "base64").toString("utf8"), source);
  }
  if (typeof o.predicateType === "string") {
    return {
      _type: String(o._type ?? ""),
      predicateType: o.predicateType,
      subject: (o.subject as InTotoStatement["subject"]) ?? [],
      predicate: o.predicate ?? {},
    };
  }
  // cosign v3's `verify --output json` prints every verified bundle in this shape, with the bundle's
  // predicate type in critical.type (attestations included, see verify()).
  const critical = o.critical as
    | {
        image?: { "docker-manifest-digest"?: string };
        identity?: { "docker-reference"?: string };
        type?: string;
      }
    | undefined;
  const d = critical?.image?.["docker-manifest-digest"];
  if (typeof d === "string") {
    return {
      _type: "https://sigstore.dev/cosign/simplesigning/v1",
      predicateType:
        typeof critical?.type === "string" && critical.type.startsWith("https://")
          ? critical.type
          : COSIGN_SIGN_PREDICATE_TYPE,
      subject: [
        {
          name: critical?.identity?.["docker-reference"],
          digest: { [d.split(":")[0]]: d.split(":")[1] },
        },
      ],
      predicate: o.optional ?? {},
    };
  }
  throw new Error(
    `cosign printed JSON that is neither an in-toto statement nor a DSSE envelope for ${source}`,
  );
}

/** cosign prints one JSON document per line (verify-attestation) or a JSON array (verify). */
export function parseVerifyOutput(stdout: string, source: string): InTotoStatement[] {
  const text = stdout.trim();
  if (text === "") return [];
  if (text.startsWith("[")) {
    return (JSON.parse(text) as unknown[]).map((x) => decodeStatement(JSON.stringify(x), source));
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("{"))
    .map((l) => decodeStatement(l, source));
}

export function subjectMatches(st: InTotoStatement, digest: string): boolean {
  const [alg, hex] = digest.split(":");
  return st.subject.some((sub) => sub.digest?.[alg] === hex);
}

/** The bundles `cosign tree` lists for an image: predicate type and the bundle's `<repo>@sha256:…`. */
export function parseTreeOutput(stdout: string): Array<{ predicateType: string; ref: string }> {
  const out: Array<{ predicateType: string; ref: string }> = [];
  for (const line of stdout.split("\n")) {
    const m = /\s(\S+) artifacts via OCI referrer: (\S+@sha256:[0-9a-f]{64})/.exec(line);
    if (m) out.push({ predicateType: m[1], ref: m[2] });
  }
  return out;
}
