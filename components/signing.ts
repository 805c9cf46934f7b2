// The key (or identity) the factory signs and attests images with, in one of three modes:
// - kms: an AWS KMS ECC_NIST_P256 SIGN_VERIFY key. The private key never leaves KMS; cosign signs
//   through `awskms:///<arn>`. Only the CI deploy role(s) may call kms:Sign; readers may fetch the
//   public key and verify; the account root administers the key but holds no use permission and
//   no `kms:*`, so a compromised admin path cannot sign.
// - key: an ECDSA P-256 key pair made inside the stack, private key a Pulumi secret (for the local
//   stack and for teams without KMS). It is made by a dynamic provider on node:crypto, not by
//   @pulumi/tls: the local engine runs with plugin acquisition disabled, and the Go module proxy
//   refuses github.com/pulumi/pulumi-tls/provider/v5 (403 "This module version is not available"),
//   so the tls resource plugin cannot be built here.
// - keyless: nothing to create; signatures carry a Fulcio certificate for the CI workflow's OIDC
//   identity, and verifiers pin that identity and its issuer.
// The outputs are what the stack exports as `signing` and what evidence/signing needs to verify.
import * as crypto from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export type SigningMode = "kms" | "key" | "keyless";
export const SIGNING_MODES: readonly SigningMode[] = ["kms", "key", "keyless"];

export interface KeylessIdentity {
  /** The signing workflow as Fulcio puts it in the certificate, e.g.
   *  `https://github.com/acme/image-factory/.github/workflows/main.yml@refs/heads/main`. */
  workflowRef: string;
  /** OIDC issuer, e.g. `https://token.actions.githubusercontent.com`. */
  issuer: string;
}

export interface SigningKeyArgs {
  mode: SigningMode;
  /** kms: roles that may sign (the CI deploy role). Required in kms mode. */
  signerRoleArns?: pulumi.Input<string>[];
  /** kms: roles that may read the public key and verify through KMS. */
  readerRoleArns?: pulumi.Input<string>[];
  /** keyless: who is expected to sign. Required in keyless mode. */
  identity?: KeylessIdentity;
  /** kms: days between scheduling deletion and deletion. @default 30 (the maximum: a lost signing
   *  key invalidates every verification policy that names it) */
  deletionWindowInDays?: number;
}

/** What the stack exports as `signing`: enough for anyone to verify, nothing secret. */
export type SigningExport =
  | { mode: "kms"; keyRef: string; keyArn: string; alias: string; publicKey: string }
  | { mode: "key"; publicKey: string }
  | { mode: "keyless"; identity: string; issuer: string };

const WORKFLOW_REF =
  /^https:\/\/[^/\s]+\/[^/\s]+\/[^/\s]+\/\.github\/workflows\/[^@\s]+\.ya?ml@refs\/(heads|tags)\/\S+$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;

/** Throws with the config key and the value when the arguments cannot make a signing key. Output
 *  role ARNs are checked once known (in the policy). */
export function validateSigningKey(args: SigningKeyArgs): void {
  if (!SIGNING_MODES.includes(args.mode)) {
    throw new Error(
      `signing.mode must be one of ${SIGNING_MODES.join(", ")}, got ${JSON.stringify(args.mode)}`,
    );
  }
  if (args.mode === "kms") {
    if (!Array.isArray(args.signerRoleArns) || args.signerRoleArns.length === 0) {
      throw new Error(
        "signing.signerRoleArns must name at least one role in kms mode (the CI deploy role that signs), got none",
      );
    }
    for (const [i, a] of [
      ...(args.signerRoleArns ?? []),
      ...(args.readerRoleArns ?? []),
    ].entries()) {
      if (typeof a === "string" && !ROLE_ARN.test(a)) {
        const key =
          i < args.signerRoleArns.length
            ? `signing.signerRoleArns[${i}]`
            : `signing.readerRoleArns[${i - args.signerRoleArns.length}]`;
        throw new Error(
          `${key} must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got ${JSON.stringify(a)}`,
        );
      }
    }
    const w = args.deletionWindowInDays;
    if (w !== undefined && (!Number.isInteger(w) || w < 7 || w > 30)) {
      throw new Error(
        `signing.deletionWindowInDays must be an integer from 7 to 30, got ${JSON.stringify(w)}`,
      );
    }
  }
  if (args.mode === "keyless") {
    if (args.identity === undefined) {
      throw new Error(
        "signing.identity must be set in keyless mode ({ workflowRef, issuer }), got nothing",
      );
    }
    if (!WORKFLOW_REF.test(args.identity.workflowRef ?? "")) {
      throw new Error(
        `signing.identity.workflowRef must be the workflow's certificate identity, https://github.com/<owner>/<repo>/.github/workflows/<file>.yml@refs/heads/<branch>, got ${JSON.stringify(args.identity.workflowRef)}`,
      );
    }
    if (!/^https:\/\/[^\s/]+/.test(args.identity.issuer ?? "")) {
      throw new Error(
        `signing.identity.issuer must be an https OIDC issuer URL, got ${JSON.stringify(args.identity.issuer)}`,
      );
    }
  }
}

/** What the account root may do with the signing key: administer it, never use it. Listed one by
 *  one (no `kms:*`, no `kms:Get*`-style wildcards) so kms:Sign can never slip in. */
export const KEY_ADMIN_ACTIONS = [
  "kms:DescribeKey",
  "kms:GetKeyPolicy",
  "kms:PutKeyPolicy",
  "kms:GetKeyRotationStatus",
  "kms:GetPublicKey",
  "kms:ListKeyPolicies",
  "kms:ListResourceTags",
  "kms:ListAliases",
  "kms:ListGrants",
  "kms:RevokeGrant",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:UpdateKeyDescription",
  "kms:CreateAlias",
  "kms:UpdateAlias",
  "kms:DeleteAlias",
  "kms:EnableKey",
  "kms:DisableKey",
  "kms:ScheduleKeyDeletion",
  "kms:CancelKeyDeletion",
];
/** cosign's awskms signer reads the key's metadata and public key before it signs. */
export const KEY_SIGNER_ACTIONS = ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"];
export const KEY_READER_ACTIONS = ["kms:GetPublicKey", "kms:Verify", "kms:DescribeKey"];

/** The key policy of a kms-mode signing key (resolved values; the component applies it). */
export function signingKeyPolicy(p: {
  accountRootArn: string;
  signerRoleArns: string[];
  readerRoleArns: string[];
}): aws.iam.PolicyDocument {
  const statements: aws.iam.PolicyDocument["Statement"] = [
    {
      Sid: "AccountAdministersWithoutUse",
      Effect: "Allow",
      Principal: { AWS: p.accountRootArn },
      Action: KEY_ADMIN_ACTIONS,
      Resource: "*",
    },
    {
      Sid: "SignersSign",
      Effect: "Allow",
      Principal: { AWS: [...p.signerRoleArns].sort() },
      Action: KEY_SIGNER_ACTIONS,
      Resource: "*",
      // Only the algorithm cosign uses with a P-256 key.
      Condition: { StringEquals: { "kms:SigningAlgorithm": "ECDSA_SHA_256" } },
    },
  ];
  if (p.readerRoleArns.length > 0) {
    statements.push({
      Sid: "ReadersVerify",
      Effect: "Allow",
      Principal: { AWS: [...p.readerRoleArns].sort() },
      Action: KEY_READER_ACTIONS,
      Resource: "*",
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

// ------------------------------------------------------------------------------------------------
// key mode: ECDSA P-256 key pair (dynamic provider; Pulumi serializes it, so it captures only
// node:crypto and holds no secret itself)
// ------------------------------------------------------------------------------------------------

interface KeyPairInputs {
  algorithm: "ECDSA";
  ecdsaCurve: "P256";
}

export const keyPairProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: KeyPairInputs) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", {
      namedCurve: "prime256v1",
    });
    const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const fingerprint = crypto
      .createHash("sha256")
      .update(publicKey.export({ type: "spki", format: "der" }))
      .digest("hex");
    return {
      id: fingerprint.slice(0, 16),
      outs: { ...inputs, publicKeyPem, privateKeyPem, publicKeyFingerprintSha256: fingerprint },
    };
  },
  async diff(_id: string, olds: KeyPairInputs, news: KeyPairInputs) {
    const replaces = (["algorithm", "ecdsaCurve"] as const).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },
  async delete() {
    // Nothing outside the state holds the key.
  },
};

/** `pulumi-nodejs:dynamic/signing:EcdsaKeyPair`: the same shape as tls.PrivateKey's ECDSA outputs. */
export class EcdsaKeyPair extends pulumi.dynamic.Resource {
  declare public readonly publicKeyPem: pulumi.Output<string>;
  declare public readonly privateKeyPem: pulumi.Output<string>;
  declare public readonly publicKeyFingerprintSha256: pulumi.Output<string>;
  constructor(name: string, opts?: pulumi.CustomResourceOptions) {
    const inputs: KeyPairInputs = { algorithm: "ECDSA", ecdsaCurve: "P256" };
    super(
      keyPairProvider,
      name,
      {
        ...inputs,
        publicKeyPem: undefined,
        privateKeyPem: undefined,
        publicKeyFingerprintSha256: undefined,
      },
      // The engine encrypts the private key in the state and every output derived from it.
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["privateKeyPem"] }),
      "signing",
      "EcdsaKeyPair",
    );
  }
}

// ------------------------------------------------------------------------------------------------
// The component
// ------------------------------------------------------------------------------------------------

export class SigningKey extends pulumi.ComponentResource {
  public readonly mode: SigningMode;
  /** kms: `awskms:///arn:aws:kms:…`, cosign's `--key`. */
  public readonly keyRef?: pulumi.Output<string>;
  /** kms: the key's ARN; its alias name. */
  public readonly keyArn?: pulumi.Output<string>;
  public readonly aliasName?: pulumi.Output<string>;
  /** kms and key: PEM public key (SPKI) that verifies the signatures. */
  public readonly publicKeyPem?: pulumi.Output<string>;
  /** key: PKCS#8 PEM private key. Secret. */
  public readonly privateKeyPem?: pulumi.Output<string>;
  /** keyless: the certificate identity (workflow ref) and OIDC issuer signatures must carry. */
  public readonly identity?: pulumi.Output<string>;
  public readonly issuer?: pulumi.Output<string>;
  /** The stack export `signing`. */
  public readonly signingExport: pulumi.Output<SigningExport>;

  constructor(name: string, args: SigningKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:signing:SigningKey", name, {}, opts);
    validateSigningKey(args);
    this.mode = args.mode;

    if (args.mode === "kms") {
      const identity = aws.getCallerIdentityOutput({}, { parent: this });
      const partition = aws.getPartitionOutput({}, { parent: this });
      const policy = pulumi
        .all([
          partition.partition,
          identity.accountId,
          pulumi.all(args.signerRoleArns ?? []),
          pulumi.all(args.readerRoleArns ?? []),
        ])
        .apply(([part, account, signers, readers]) => {
          // Checked again once Outputs resolve: a role ARN that came from another resource.
          validateSigningKey({ mode: "kms", signerRoleArns: signers, readerRoleArns: readers });
          return JSON.stringify(
            signingKeyPolicy({
              accountRootArn: `arn:${part}:iam::${account}:root`,
              signerRoleArns: signers,
              readerRoleArns: readers,
            }),
          );
        });
      const key = new aws.kms.Key(
        `${name}-key`,
        {
          description: `image-factory ${pulumi.getStack()}: cosign image signing key`,
          customerMasterKeySpec: "ECC_NIST_P256",
          keyUsage: "SIGN_VERIFY",
          // Asymmetric keys cannot rotate automatically; rotation is a new key and a policy update.
          enableKeyRotation: false,
          deletionWindowInDays: args.deletionWindowInDays ?? 30,
          policy,
        },
        { parent: this },
      );
      const alias = new aws.kms.Alias(
        `${name}-alias`,
        {
          name: `alias/${pulumi.getProject()}-${pulumi.getStack()}-${name}`,
          targetKeyId: key.keyId,
        },
        { parent: this },
      );
      this.keyArn = key.arn;
      this.aliasName = alias.name;
      this.keyRef = pulumi.interpolate`awskms:///${key.arn}`;
      this.publicKeyPem = aws.kms.getPublicKeyOutput(
        { keyId: key.arn },
        { parent: this },
      ).publicKeyPem;
      this.signingExport = pulumi
        .all([this.keyRef, key.arn, alias.name, this.publicKeyPem])
        .apply(([keyRef, keyArn, aliasName, publicKey]): SigningExport => ({
          mode: "kms",
          keyRef,
          keyArn,
          alias: aliasName,
          publicKey,
        }));
    } else if (args.mode === "key") {
      const pair = new EcdsaKeyPair(`${name}-keypair`, { parent: this });
      this.publicKeyPem = pair.publicKeyPem;
      this.privateKeyPem = pulumi.secret(pair.privateKeyPem);
      this.signingExport = pair.publicKeyPem.apply((publicKey): SigningExport => ({
        mode: "key",
        publicKey,
      }));
    } else {
      const id = args.identity as KeylessIdentity;
      this.identity = pulumi.output(id.workflowRef);
      this.issuer = pulumi.output(id.issuer);
      this.signingExport = pulumi.output<SigningExport>({
        mode: "keyless",
        identity: id.workflowRef,
        issuer: id.issuer,
      });
    }

    // The private key is deliberately not registered: component outputs land in the state.
    this.registerOutputs({
      mode: this.mode,
      keyRef: this.keyRef,
      keyArn: this.keyArn,
      aliasName: this.aliasName,
      publicKeyPem: this.publicKeyPem,
      identity: this.identity,
      issuer: this.issuer,
      signingExport: this.signingExport,
    });
  }
}
