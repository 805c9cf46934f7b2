// The BuildKit PKI of a stack: one CA, a server certificate per host and one client certificate for
// CI, all made with @pulumi/tls and kept in Pulumi state as secrets.
//
// The CA only ever signs leaves: every certificate below is issued with isCaCertificate false, so
// no intermediate CA exists to misuse. The CA also asks for maxPathLength 0, but @pulumi/tls 5.6.1
// (terraform-provider-tls) sets Go's MaxPathLen without MaxPathLenZero, and Go then omits the
// pathLenConstraint for 0: the certificate does not carry pathlen:0 (docs/build-hosts.md). Its
// validity is at most two years; rotation is `pulumi up --replace <CA urn>` (docs/build-hosts.md).
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { builderName } from "../naming";
import type { HostArch } from "../types";

/** Two years: long enough to rotate on a plan, short enough that a copied key stops working. */
export const CA_VALIDITY_HOURS = 2 * 8760;
/** The first `pulumi up` in the CA's last 90 days replaces it (and with it every leaf). */
export const CA_EARLY_RENEWAL_HOURS = 90 * 24;
export const LEAF_VALIDITY_HOURS = 8760;
export const LEAF_EARLY_RENEWAL_HOURS = 30 * 24;

export interface Leaf {
  key: tls.PrivateKey;
  cert: tls.LocallySignedCert;
}

export interface Pki {
  caKey: tls.PrivateKey;
  ca: tls.SelfSignedCert;
  /** A leaf signed by the CA; `role` names its resources `${name}-<role>-{key,csr,cert}`. */
  leaf(
    role: string,
    commonName: string,
    uses: string[],
    san?: {
      dnsNames?: pulumi.Input<pulumi.Input<string>[]>;
      ipAddresses?: pulumi.Input<pulumi.Input<string>[]>;
    },
  ): Leaf;
}

const KEY = { algorithm: "ECDSA", ecdsaCurve: "P256" } as const;

/** The CA of a BuildHosts component; children are named `${name}-ca…` under `parent`. */
export function createPki(name: string, stack: string, parent: pulumi.Resource): Pki {
  const opts = { parent };
  const caKey = new tls.PrivateKey(`${name}-ca-key`, KEY, opts);
  const ca = new tls.SelfSignedCert(
    `${name}-ca`,
    {
      privateKeyPem: caKey.privateKeyPem,
      isCaCertificate: true,
      maxPathLength: 0,
      subject: { commonName: `image-factory ${stack} BuildKit CA`, organization: "image-factory" },
      validityPeriodHours: CA_VALIDITY_HOURS,
      earlyRenewalHours: CA_EARLY_RENEWAL_HOURS,
      allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
    },
    opts,
  );
  const leaf: Pki["leaf"] = (role, commonName, uses, san = {}) => {
    const key = new tls.PrivateKey(`${name}-${role}-key`, KEY, opts);
    const csr = new tls.CertRequest(
      `${name}-${role}-csr`,
      {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName, organization: "image-factory" },
        ...san,
      },
      opts,
    );
    const cert = new tls.LocallySignedCert(
      `${name}-${role}-cert`,
      {
        certRequestPem: csr.certRequestPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        caCertPem: ca.certPem,
        isCaCertificate: false,
        // A new server certificate changes the user data, which replaces the host (its cache
        // volume stays), so renewal happens on the first `pulumi up` of its last 30 days.
        validityPeriodHours: LEAF_VALIDITY_HOURS,
        earlyRenewalHours: LEAF_EARLY_RENEWAL_HOURS,
        allowedUses: ["digital_signature", "key_encipherment", ...uses],
      },
      opts,
    );
    return { key, cert };
  };
  return { caKey, ca, leaf };
}

/** Paths on the CI runner where it writes `caCertPem`, `clientCertPem` and `clientKeyPem` before
 *  running `builderCommands`; buildx reads them whenever it connects. */
export interface CertFiles {
  ca: string;
  cert: string;
  key: string;
}

export function certFiles(dir: string): CertFiles {
  return { ca: `${dir}/ca.pem`, cert: `${dir}/client.pem`, key: `${dir}/client-key.pem` };
}

/** The exact command CI runs to create the remote builder for one architecture. */
export function builderCommand(opts: {
  stack: string;
  arch: HostArch;
  endpoint: string;
  files: CertFiles;
}): string {
  const name = builderName(opts.stack, opts.arch);
  const platforms = opts.arch === "amd64" ? "linux/amd64" : "linux/arm64,linux/arm/v7";
  const driverOpts = `cacert=${opts.files.ca},cert=${opts.files.cert},key=${opts.files.key},servername=${name}`;
  return `docker buildx create --name ${name} --driver remote --driver-opt ${driverOpts} --platform ${platforms} ${opts.endpoint}`;
}
