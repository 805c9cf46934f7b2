import * as assert from "node:assert/strict";
import { cacheSettings } from "../../components/buildCache";
import type { CacheConfig } from "../../components/types";

// A pull request imports main's cache but writes only its own scope: unmerged code must not poison
// the cache that main's builds import.
describe("buildCache: pull-request scope", () => {
  const registry: CacheConfig = {
    type: "registry",
    mode: "max",
    ref: "ghcr.io/acme/shop-api-buildcache",
    ignoreError: true,
  };
  /** The one cache export of a build with the registry cache above: max mode, errors ignored. */
  const writes = (ref: string) => ({
    registry: {
      ref,
      mode: "max",
      ignoreError: true,
      ociMediaTypes: true,
      imageManifest: true,
    },
  });

  it("main's build reads and writes main's ref", async () => {
    const s = cacheSettings(registry, "linux/arm64", "dev");
    assert.deepEqual(s.cacheFrom, [
      { registry: { ref: "ghcr.io/acme/shop-api-buildcache:linux-arm64" } },
    ]);
    assert.deepEqual(s.cacheTo, [writes("ghcr.io/acme/shop-api-buildcache:linux-arm64")]);
  });

  it("a pull request reads its own ref then main's, and writes only its own", async () => {
    const s = cacheSettings(registry, "linux/arm64", "dev", undefined, "pr-12");
    assert.deepEqual(s.cacheFrom, [
      { registry: { ref: "ghcr.io/acme/shop-api-buildcache:pr-12-linux-arm64" } },
      { registry: { ref: "ghcr.io/acme/shop-api-buildcache:linux-arm64" } },
    ]);
    assert.deepEqual(s.cacheTo, [writes("ghcr.io/acme/shop-api-buildcache:pr-12-linux-arm64")]);
    assert.equal(s.ref, "ghcr.io/acme/shop-api-buildcache:pr-12-linux-arm64");
  });

  it("gha and local caches get a scope of their own too", async () => {
    const gha = cacheSettings(
      { type: "gha", mode: "max" },
      "linux/amd64",
      "dev",
      undefined,
      "pr-7",
    );
    assert.deepEqual(gha.cacheFrom, [
      { gha: { scope: "image-factory-dev/pr-7-linux-amd64" } },
      { gha: { scope: "image-factory-dev-linux-amd64" } },
    ]);
    assert.deepEqual(gha.cacheTo, [
      { gha: { scope: "image-factory-dev/pr-7-linux-amd64", mode: "max", ignoreError: true } },
    ]);
    const local = cacheSettings(
      { type: "local", mode: "min", dir: "/cache" },
      "linux/amd64",
      "dev",
      undefined,
      "pr-7",
    );
    assert.deepEqual(local.cacheTo, [
      { local: { dest: "/cache/dev/pr-7/linux-amd64", mode: "min", ignoreError: true } },
    ]);
    assert.deepEqual(local.cacheFrom, [
      { local: { src: "/cache/dev/pr-7/linux-amd64" } },
      { local: { src: "/cache/dev/linux-amd64" } },
    ]);
  });
});
