// What a build host boots with, as pure rendering: the cloud-config YAML (through the `yaml`
// package, checked here by property: whatever the certificates hold, the rendered user data parses
// back to exactly the configuration), buildkitd.toml, the systemd unit and the setup script. The
// same text against the real consumers — `cloud-init schema`, bash, shellcheck and buildkitd — is in
// test/integration/userData.integration.test.ts; nothing here needs a tool on PATH.
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { parse } from "yaml";
import {
  type CloudConfigOptions,
  DEFAULT_BUILDKIT_RELEASE,
  HOST_PACKAGES,
  HOST_PATHS,
  USER_DATA_LIMIT_BYTES,
  buildkitReleaseUrl,
  cloudConfig,
  gcLimits,
  renderBuildkitdToml,
  renderCloudConfig,
  renderSetupScript,
  renderSystemdUnit,
} from "../../components/buildHosts/userData";
import {
  LOCAL_BUILDKITD,
  localBuildkitdOptions,
  renderLocalBuildkitdToml,
} from "../../scripts/render-buildkitd-toml";
import { CA_PEM, SERVER_PEM, cloudConfigOptions as options } from "../lib/buildHosts";

const GIB = 1024 ** 3;

interface WriteFile {
  path: string;
  owner: string;
  permissions: string;
  content: string;
}
interface CloudConfig {
  packages: string[];
  package_update: boolean;
  package_upgrade: boolean;
  write_files: WriteFile[];
  runcmd: string[];
}

/** Text a certificate field could hold: anything, and the words YAML 1.1 (cloud-init's PyYAML)
 *  would read as something other than a string when left unquoted. */
const certText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({
    unit: fc.constantFrom("a", "-", " ", "\n", "\r", "\t", ":", "#", "'", '"', "|", ">", "\\"),
    maxLength: 200,
  }),
  fc.constantFrom(
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "~",
    "null",
    "0644",
    "0x1F",
    "1e3",
    ".inf",
    "2001-12-14",
    "<<",
    "=",
    "- a",
    "? b",
    "@x",
    "`",
  ),
  fc.constant(CA_PEM),
);

describe("one BuildKit pin for the hosts and the local daemon", () => {
  it("reads the hosts' release and its checksums from scripts/versions.env", () => {
    assert.deepEqual(DEFAULT_BUILDKIT_RELEASE, {
      version: "v0.32.2",
      sha256: {
        amd64: "2975d0f651ad96ba8b80b9992ae1f9a964f4408569af5b6dc36544165c3926af",
        arm64: "9e8f46bf309ec0ab262967be5538a4dbe06be756a82621f98253933bac5dcf92",
      },
    });
  });
});

describe("renderCloudConfig round-trips through the YAML parser (property)", () => {
  it("parses back to exactly the configuration, whatever the certificates hold", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("amd64", "arm64" as const),
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 1, max: 16384 }),
        certText,
        certText,
        (arch, port, volumeGb, caCertPem, serverCertPem) => {
          const o = options({ arch, port, volumeGb, caCertPem, serverCertPem });
          const text = renderCloudConfig(o);
          assert.ok(text.startsWith("#cloud-config\n"), "cloud-init needs the header on line 1");
          assert.ok(Buffer.byteLength(text) <= USER_DATA_LIMIT_BYTES);
          // PyYAML reads YAML 1.1; a 1.2 reader must agree on every value.
          assert.deepEqual(parse(text, { version: "1.1" }), cloudConfig(o));
          assert.deepEqual(parse(text), cloudConfig(o));
          const doc = parse(text, { version: "1.1" }) as CloudConfig;
          const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f.content]));
          assert.equal(files[`${HOST_PATHS.tlsDir}/ca.pem`], caCertPem);
          assert.equal(files[`${HOST_PATHS.tlsDir}/server.pem`], serverCertPem);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a whitespace-only file exactly (the property\'s counterexample [amd64, 1, 1, "", " \\n"])', () => {
    const o = options({ arch: "amd64", port: 1, volumeGb: 1, caCertPem: "", serverCertPem: " \n" });
    assert.deepEqual(parse(renderCloudConfig(o), { version: "1.1" }), cloudConfig(o));
  });

  it('keeps 1.1-ambiguous values strings: permissions stay "0644", not the number 420', () => {
    const doc = parse(renderCloudConfig(options({ caCertPem: "yes", serverCertPem: "0644" })), {
      version: "1.1",
    }) as CloudConfig;
    assert.deepEqual(
      doc.write_files.map((f) => [f.path, f.permissions]),
      [
        ["/etc/buildkit/buildkitd.toml", "0644"],
        ["/etc/buildkit/tls/ca.pem", "0644"],
        ["/etc/buildkit/tls/server.pem", "0644"],
        ["/etc/systemd/system/buildkitd.service", "0644"],
        ["/usr/local/sbin/image-factory-buildhost-setup", "0755"],
      ],
    );
    assert.equal(doc.write_files[1].content, "yes");
    assert.equal(doc.write_files[2].content, "0644");
  });

  it("writes multi-line files as literal blocks, readable in `cloud-init query userdata`", () => {
    const text = renderCloudConfig(options());
    assert.ok(
      text.includes(
        '  - path: /etc/buildkit/tls/ca.pem\n    owner: root:root\n    permissions: "0644"\n    content: |\n      -----BEGIN CERTIFICATE-----\n',
      ),
      text,
    );
  });

  it("refuses user data over EC2's 16 KB", () => {
    assert.throws(
      () => renderCloudConfig(options({ caCertPem: "x".repeat(USER_DATA_LIMIT_BYTES) })),
      /user data for the arm64 host is \d+ bytes, over EC2's 16384/,
    );
  });
});

describe("gcLimits", () => {
  it("derives the cache cap and reserves from the volume size", async () => {
    const gc = gcLimits(200);
    assert.equal(gc.volumeBytes, 200 * GIB);
    assert.equal(gc.keepBytes, 160 * GIB);
    assert.equal(gc.reservedBytes, 20 * GIB);
    assert.equal(gc.minFreeBytes, 20 * GIB);
    assert.equal(gc.transientBytes, 10 * GIB);
    assert.ok(gc.keepBytes + gc.minFreeBytes <= gc.volumeBytes);
  });

  for (const bad of [0, -5, 1.5, Number.NaN]) {
    it(`refuses a volume of ${bad} GiB`, async () => {
      assert.throws(() => gcLimits(bad), /volumeGb must be a positive integer/);
    });
  }
});

describe("renderBuildkitdToml", () => {
  it("listens with mutual TLS on the port and a root-only local socket", async () => {
    const toml = renderBuildkitdToml({ port: 4567, volumeGb: 100 });
    assert.match(
      toml,
      /^ {2}address = \["tcp:\/\/0\.0\.0\.0:4567", "unix:\/\/\/run\/buildkit\/buildkitd\.sock"\]$/m,
    );
    assert.match(toml, /^ {4}cert = "\/etc\/buildkit\/tls\/server\.pem"$/m);
    assert.match(toml, /^ {4}key = "\/etc\/buildkit\/tls\/server-key\.pem"$/m);
    assert.match(toml, /^ {4}ca = "\/etc\/buildkit\/tls\/ca\.pem"$/m);
    assert.match(toml, /^root = "\/var\/lib\/buildkit"$/m);
    assert.match(toml, /^ {2}networkMode = "bridge"$/m);
    assert.match(toml, new RegExp(`^ {2}maxUsedSpace = ${gcLimits(100).keepBytes}$`, "m"));
    assert.equal(toml.match(/\[\[worker\.oci\.gcpolicy\]\]/g)?.length, 4);
    assert.match(toml, /\[worker\.containerd\]\n {2}enabled = false/);
    // No entitlement: a build asking for network.host or security.insecure is refused.
    assert.doesNotMatch(toml, /entitlements/);
    assert.doesNotMatch(toml, /^\[registry\./m);
  });

  it("renders a registry's CA files as a TLS-only [registry] section, after everything else", async () => {
    const toml = renderBuildkitdToml({
      port: 1234,
      volumeGb: 10,
      registries: { "127.0.0.1:5443": { ca: ['/x/a "b".pem', "/y/c.pem"] } },
    });
    assert.ok(
      toml.endsWith(
        '\n[worker.containerd]\n  enabled = false\n\n[registry."127.0.0.1:5443"]\n  http = false\n  ca = ["/x/a \\"b\\".pem", "/y/c.pem"]\n',
      ),
      toml,
    );
  });
});

describe("the local daemon's buildkitd.toml (scripts/render-buildkitd-toml.ts) is a host's", () => {
  const dir = "/root/.cache/image-factory/buildkit";
  const registryCa = "/root/.cache/image-factory/registry-tls/ca.pem";

  it("differs from the host rendering only in the listen address, networkMode, local paths and the registry CA", async () => {
    const { port, volumeGb } = LOCAL_BUILDKITD;
    const host = renderBuildkitdToml({ port, volumeGb }).split("\n");
    const local = renderLocalBuildkitdToml({ dir, registryCa }).split("\n");
    const changed: Array<[string, string]> = [];
    for (let i = 0; i < host.length; i++)
      if (host[i] !== local[i]) changed.push([host[i], local[i]]);
    assert.deepEqual(changed, [
      ['root = "/var/lib/buildkit"', 'root = "/root/.cache/image-factory/buildkit/root"'],
      [
        '  address = ["tcp://0.0.0.0:1234", "unix:///run/buildkit/buildkitd.sock"]',
        '  address = ["tcp://127.0.0.1:1234", "unix:///root/.cache/image-factory/buildkit/buildkitd.sock"]',
      ],
      [
        '    cert = "/etc/buildkit/tls/server.pem"',
        '    cert = "/root/.cache/image-factory/buildkit/certs/server.pem"',
      ],
      [
        '    key = "/etc/buildkit/tls/server-key.pem"',
        '    key = "/root/.cache/image-factory/buildkit/certs/server-key.pem"',
      ],
      [
        '    ca = "/etc/buildkit/tls/ca.pem"',
        '    ca = "/root/.cache/image-factory/buildkit/certs/ca.pem"',
      ],
      ['  networkMode = "bridge"', '  networkMode = "host"'],
    ]);
    // Appended after the host's last line: the local TLS registry's CA, nothing else.
    assert.deepEqual(local.slice(host.length), [
      '[registry."127.0.0.1:5443"]',
      "  http = false",
      '  ca = ["/root/.cache/image-factory/registry-tls/ca.pem"]',
      "",
    ]);
    assert.doesNotMatch(local.join("\n"), /entitlements/);
  });

  it("keeps those differences for any port, volume and directory (a private daemon's too)", async () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 1, max: 16384 }),
        fc.stringMatching(/^\/[a-z0-9._-]{1,12}(\/[a-z0-9._-]{1,12}){0,3}$/),
        (port, volumeGb, d) => {
          const host = renderBuildkitdToml({ port, volumeGb }).split("\n");
          const o = localBuildkitdOptions({ dir: d, registryCa, port, volumeGb });
          assert.equal(o.listen, "127.0.0.1");
          assert.equal(o.networkMode, "host");
          const local = renderBuildkitdToml(o).split("\n");
          const changed = host.flatMap((l, i) => (l === local[i] ? [] : [l.trim().split(" ")[0]]));
          assert.deepEqual(changed, ["root", "address", "cert", "key", "ca", "networkMode"]);
          assert.equal(local.length, host.length + 4);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("renderSetupScript", () => {
  it("downloads the pinned release, checks its sha256 before unpacking and reads the key from SSM", async () => {
    const script = renderSetupScript(options({ arch: "amd64" }));
    const url = buildkitReleaseUrl(DEFAULT_BUILDKIT_RELEASE, "amd64");
    assert.equal(
      url,
      "https://github.com/moby/buildkit/releases/download/v0.32.2/buildkit-v0.32.2.linux-amd64.tar.gz",
    );
    assert.ok(script.includes(`BUILDKIT_URL='${url}'`));
    assert.ok(script.includes(`BUILDKIT_SHA256='${DEFAULT_BUILDKIT_RELEASE.sha256.amd64}'`));
    assert.ok(
      script.indexOf("sha256sum -c") < script.indexOf("tar -xzf"),
      "checksum is verified before unpacking",
    );
    assert.match(
      script,
      /aws ssm get-parameter --region "\$region" --with-decryption --name "\$KEY_PARAMETER"/,
    );
    assert.match(script, /mkfs\.xfs/);
    assert.ok(
      script.indexOf("blkid") < script.indexOf("mkfs.xfs"),
      "only a blank volume is formatted",
    );
  });

  const bad: Array<[string, Partial<CloudConfigOptions>, RegExp]> = [
    [
      "a short sha256",
      { release: { ...DEFAULT_BUILDKIT_RELEASE, sha256: { amd64: "abc", arm64: "abc" } } },
      /buildkit\.sha256\.arm64/,
    ],
    [
      "a version with shell",
      { release: { ...DEFAULT_BUILDKIT_RELEASE, version: "v1;rm -rf /" } },
      /buildkit\.version/,
    ],
    [
      "an http mirror",
      { release: { ...DEFAULT_BUILDKIT_RELEASE, url: { arm64: "http://mirror/buildkit.tgz" } } },
      /buildkit\.url\.arm64/,
    ],
    ["a quote in the volume id", { volumeId: "vol-1'" }, /volumeId/],
    ["a parameter with spaces", { serverKeyParameter: "/a b" }, /serverKeyParameter/],
  ];
  for (const [what, o, re] of bad) {
    it(`refuses ${what}`, async () => {
      assert.throws(() => renderSetupScript(options(o)), re);
    });
  }
});

describe("renderCloudConfig", () => {
  it("is #cloud-config YAML with the packages, files and the one setup command", async () => {
    const text = renderCloudConfig(options());
    assert.ok(text.startsWith("#cloud-config\n"));
    assert.ok(Buffer.byteLength(text) < USER_DATA_LIMIT_BYTES);
    const doc = parse(text) as CloudConfig;
    assert.deepEqual(doc.packages, [...HOST_PACKAGES]);
    assert.equal(doc.package_upgrade, false);
    const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f]));
    assert.deepEqual(
      Object.keys(files).sort(),
      [
        HOST_PATHS.config,
        `${HOST_PATHS.tlsDir}/ca.pem`,
        `${HOST_PATHS.tlsDir}/server.pem`,
        HOST_PATHS.unit,
        HOST_PATHS.setup,
      ].sort(),
    );
    assert.equal(
      files[HOST_PATHS.config].content,
      renderBuildkitdToml({ port: 1234, volumeGb: 200 }),
    );
    assert.equal(files[`${HOST_PATHS.tlsDir}/ca.pem`].content, CA_PEM);
    assert.equal(files[`${HOST_PATHS.tlsDir}/server.pem`].content, SERVER_PEM);
    assert.equal(files[HOST_PATHS.unit].content, renderSystemdUnit());
    assert.equal(files[HOST_PATHS.setup].content, renderSetupScript(options()));
    assert.equal(files[HOST_PATHS.setup].permissions, "0755");
    for (const f of doc.write_files) assert.equal(f.owner, "root:root");
    assert.deepEqual(doc.runcmd, [HOST_PATHS.setup]);
    // User data is readable through the EC2 API: no private key may ever be in it.
    assert.doesNotMatch(text, /PRIVATE KEY/);
  });

  it("starts buildkitd only with the cache volume mounted", async () => {
    const unit = renderSystemdUnit();
    assert.match(unit, /^RequiresMountsFor=\/var\/lib\/buildkit$/m);
    assert.match(
      unit,
      /^ExecStart=\/usr\/local\/bin\/buildkitd --config \/etc\/buildkit\/buildkitd\.toml$/m,
    );
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
  });
});
