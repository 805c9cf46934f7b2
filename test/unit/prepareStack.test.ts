import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  PassphraseCrypter,
  readBaseConfig,
  readPassphrase,
  readToken,
} from "../../scripts/prepare-stack";

// scripts/prepare-stack.ts encrypts the registry token in its own process (never on a pulumi command
// line), so its crypter must be byte-compatible with the pulumi CLI's passphrase provider. The
// fixture is what pulumi v3.259.0 wrote for `stack init --secrets-provider passphrase` and
// `printf 'not-a-real-token\n' | pulumi config set --secret fixture:token` with this passphrase.
const PASSPHRASE = "unit-test-passphrase";
const SALT = "v1:YjCvchI5TaQ=:v1:Lii9A/AYatbgfp3I:YSlRzKGHF07MdWTBJ6BiDWA6p3hL4Q==";
const PULUMI_CIPHERTEXT = "v1:6rtIWpW2sZvVMGe/:5Co4fIkNjkq/P1QtgL3HSgb8fmi50e6kBByh8WEjQvI=";

describe("prepare-stack: the passphrase crypter matches the pulumi CLI", function () {
  this.timeout(60_000);
  let crypter: PassphraseCrypter;

  before(async () => {
    crypter = await PassphraseCrypter.open(PASSPHRASE, SALT);
  });

  it("decrypts what pulumi config set --secret wrote (one trailing newline dropped, as pulumi does)", async () => {
    assert.equal(crypter.tryDecrypt(PULUMI_CIPHERTEXT), "not-a-real-token");
  });

  it("encrypts to the v1:<nonce>:<ciphertext> form with a fresh nonce each time, and reads it back", async () => {
    const a = crypter.encrypt("s3cret");
    const b = crypter.encrypt("s3cret");
    assert.match(a, /^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
    assert.notEqual(a, b);
    assert.equal(crypter.tryDecrypt(a), "s3cret");
    assert.ok(!a.includes("s3cret"));
  });

  it("refuses a wrong passphrase: the salt's check value does not open", async () => {
    await assert.rejects(
      PassphraseCrypter.open("not-the-passphrase", SALT),
      /incorrect passphrase/,
    );
  });

  it("rejects a tampered or foreign ciphertext instead of returning garbage", async () => {
    const [v, nonce, body] = PULUMI_CIPHERTEXT.split(":");
    const flipped = Buffer.from(body, "base64");
    flipped[0] ^= 1;
    assert.equal(crypter.tryDecrypt(`${v}:${nonce}:${flipped.toString("base64")}`), undefined);
    assert.equal(crypter.tryDecrypt("v1:bad"), undefined);
    assert.equal(crypter.tryDecrypt("plain text"), undefined);
  });

  it("names a malformed salt", async () => {
    await assert.rejects(PassphraseCrypter.open(PASSPHRASE, "v2:abc"), /malformed encryptionsalt/);
  });
});

describe("prepare-stack: inputs", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prepare-stack-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  it("reads the passphrase as pulumi does: the variable first, else the trimmed file", async () => {
    const file = write("passphrase", "  abc123\n");
    assert.equal(readPassphrase({ PULUMI_CONFIG_PASSPHRASE_FILE: file }), "abc123");
    assert.equal(
      readPassphrase({ PULUMI_CONFIG_PASSPHRASE: "", PULUMI_CONFIG_PASSPHRASE_FILE: file }),
      "",
    );
    assert.throws(() => readPassphrase({}), /PULUMI_CONFIG_PASSPHRASE_FILE is not set/);
  });

  it("drops exactly one trailing newline of the password file, and refuses an empty one", async () => {
    assert.equal(readToken(write("pw1", "tok\n")), "tok");
    assert.equal(readToken(write("pw2", "tok\n\n")), "tok\n");
    assert.throws(() => readToken(write("pw3", "\n")), /is empty/);
  });

  it("keeps the base config's settings and refuses machine-specific secrets-provider keys", async () => {
    const base = readBaseConfig(
      write("base.yaml", "# comment\nconfig:\n  p:a: 1\n  p:b:\n    c: [x]\n"),
    );
    assert.deepEqual(base, { config: { "p:a": 1, "p:b": { c: ["x"] } } });
    assert.deepEqual(readBaseConfig(write("empty.yaml", "")), { config: {} });
    for (const key of ["encryptionsalt", "encryptedkey", "secretsprovider"]) {
      assert.throws(
        () => readBaseConfig(write(`${key}.yaml`, `${key}: x\nconfig: {}\n`)),
        new RegExp(`must not carry ${key}`),
      );
    }
    assert.throws(() => readBaseConfig(write("list.yaml", "- a\n")), /not a YAML mapping/);
  });
});
