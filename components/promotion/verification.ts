// The promotion's verification as a resource: the engine's `verify` step (evidence/verify.ts) run
// as a child process on the registry, before any release tag is written.
import * as pulumi from "@pulumi/pulumi";
import type { VerifyReport, VerifyRequest, VerifyTrust } from "../../evidence/verify";
import {
  engineStepProvider,
  engineTail,
  inputsFingerprint,
  runEngineProcess,
} from "../engineProcess";
import { EngineStepResource } from "../engineStepResource";
import { fail } from "./rules";

/** How promotion decides whom to trust (config `image-factory:signing` of the promoting stack). */
export interface PromotionVerification {
  mode: "key" | "kms" | "keyless";
  /** @default false */
  tlog?: boolean;
  /** key/kms: a PEM this stack pins. Unset = the source stack's exported `signing.publicKey`. */
  publicKey?: string;
  /** keyless: pinned identity and OIDC issuer. */
  identity?: string;
  issuer?: string;
}

/** The stack export `signing` (docs/contracts.md): who signs (or, on a promoting stack, whom it
 *  verified), and digest → signature referrer manifest. Nothing secret. */
export interface StackSigningExport {
  mode: "key" | "kms" | "keyless";
  publicKey?: string;
  keyRef?: string;
  keyArn?: string;
  alias?: string;
  identity?: string;
  issuer?: string;
  signatures: Record<string, string>;
}

/** The source stack's `signing` export, as far as promotion reads it. */
export interface SourceSigning {
  mode?: unknown;
  publicKey?: unknown;
  identity?: unknown;
  issuer?: unknown;
}

/** What the signatures must verify with: this stack's pinned key or identity, else the key the
 *  source stack exports. Errors name the config key and the export. */
export function trustFor(
  v: PromotionVerification,
  sourceStack: string,
  exported: unknown,
): VerifyTrust {
  const src = JSON.stringify(sourceStack);
  if (v.mode === "keyless") {
    if (!v.identity || !v.issuer) {
      fail(
        "image-factory:signing.identity and signing.issuer must pin the signing workflow in keyless mode; refusing to trust an identity the source stack exports",
      );
    }
    return { identity: v.identity, issuer: v.issuer };
  }
  if (v.publicKey !== undefined && v.publicKey !== "") return { publicKeyPem: v.publicKey };
  const e = (typeof exported === "object" && exported !== null ? exported : {}) as SourceSigning;
  if (typeof e.publicKey !== "string" || !e.publicKey.includes("-----BEGIN PUBLIC KEY-----")) {
    fail(
      `source stack ${src} exports no "signing.publicKey" (got ${JSON.stringify(exported ?? null)}) and this stack pins none (image-factory:signing.publicKey): nothing to verify its signatures with; refusing to promote`,
    );
  }
  return { publicKeyPem: e.publicKey };
}

/** The request the Verify resource hands the engine (no token: that goes in its environment). */
type VerifyInputs = Omit<VerifyRequest, "registryToken"> & { registryToken?: string };

/** Everything but the token decides whether verification runs again. */
export function verifyFingerprint(inputs: VerifyInputs): string {
  return inputsFingerprint(inputs, ["registryToken"]);
}

async function runVerify(inputs: VerifyInputs): Promise<pulumi.dynamic.CreateResult> {
  const { registryToken, ...request } = inputs;
  const child = await runEngineProcess(["verify"], request, registryToken);
  if (child.code !== 0) {
    const why =
      child.code === 1
        ? child.stderr.trim()
        : `the verification could not run (exit ${child.code}): ${engineTail(child)}`;
    throw new Error(`PromotedImage: ${why}\nNo tag was published.`);
  }
  const report = JSON.parse(child.stdout) as VerifyReport;
  return {
    id: inputs.digest,
    outs: {
      fingerprint: verifyFingerprint(inputs),
      digest: report.digest,
      platformDigests: report.platformDigests,
      signatures: report.signatures,
      attestedGates: report.gates,
      provenance: report.provenance,
      sboms: report.sboms,
      checked: report.checked,
      seconds: report.seconds,
    },
  };
}

/** Capture-free, serialized into the state: it holds no secret and no Pulumi object. */
export const verifyProvider = engineStepProvider(runVerify, verifyFingerprint);

/** `pulumi-nodejs:dynamic/promotion:Verify`: the engine's verify step on the registry. */
export class VerifiedRelease extends EngineStepResource {
  declare public readonly digest: pulumi.Output<string>;
  declare public readonly platformDigests: pulumi.Output<Record<string, string>>;
  declare public readonly signatures: pulumi.Output<Record<string, string>>;
  declare public readonly checked: pulumi.Output<string[]>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    const outputs = "fingerprint signatures attestedGates provenance sboms checked seconds".split(
      " ",
    );
    super(verifyProvider, ["promotion", "Verify"], outputs, name, props, opts);
  }
}
