// Build-host settings shared by the unit, mock and integration tests: one valid configuration to
// vary per test, so that a new required setting is added in one place.
import type { BuildHostsConfig } from "../../components/types";
import {
  type CloudConfigOptions,
  DEFAULT_BUILDKIT_RELEASE,
} from "../../components/buildHosts/userData";

/** The build hosts enabled with the documented defaults, plus `overrides`. */
export function buildHostsConfig(overrides: Partial<BuildHostsConfig> = {}): BuildHostsConfig {
  return {
    enabled: true,
    amd64InstanceType: "c7i.xlarge",
    arm64InstanceType: "c7g.xlarge",
    allowedCidrs: [],
    port: 1234,
    cacheVolumeGb: 200,
    ssmAccess: "scoped",
    ...overrides,
  };
}

// Shaped like real PEMs so the YAML carries the same line structure as on a host.
export const CA_PEM =
  "-----BEGIN CERTIFICATE-----\nMIIBdDCCARqgAwIBAgIQZmFrZS1jYS1mb3ItdGVzdHMwCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";
export const SERVER_PEM =
  "-----BEGIN CERTIFICATE-----\nMIIBizCCATCgAwIBAgIRAPZmFrZS1zZXJ2ZXItY2VydDAKBggqhkjOPQQDAjAw\n-----END CERTIFICATE-----\n";

/** What an arm64 build host's user data is rendered from, plus `overrides`. */
export function cloudConfigOptions(
  overrides: Partial<CloudConfigOptions> = {},
): CloudConfigOptions {
  return {
    arch: "arm64",
    release: DEFAULT_BUILDKIT_RELEASE,
    volumeId: "vol-0123456789abcdef0",
    serverKeyParameter: "/image-factory/dev/buildhosts/arm64/server-key",
    port: 1234,
    volumeGb: 200,
    caCertPem: CA_PEM,
    serverCertPem: SERVER_PEM,
    ...overrides,
  };
}
