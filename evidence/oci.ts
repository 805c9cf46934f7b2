// Registry access for the evidence engine, one concern per module under evidence/oci/: credentials
// handed to tools through a private Docker config (never a command line), the checks asked of a
// registry before anything is built, reads, tags and pushes through crane, and the SBOM artifact
// (an OCI 1.1 referrer of the platform image) for registries that keep evidence beside the image.
export { isLoopbackRegistry, registryOf, repositoryOf } from "./reference";
export { type RegistryAuth, insecureOf, withDockerConfig } from "./oci/auth";
export { checkedRealm, credentialsProblem, probeInsecure } from "./oci/preflight";
export { crane, digestOfTag, indexPlatforms } from "./oci/crane";
export { fetchSbomArtifact, headManifest, pushSbomArtifact } from "./oci/sbomArtifact";
