// Syft's own JSON document (syft-json), as far as the SBOM reuse reads and writes it.

export interface SyftLocation {
  path: string;
  layerID?: string;
  accessPath?: string;
  annotations?: Record<string, string>;
}

export interface SyftArtifact {
  id: string;
  name: string;
  version: string;
  type: string;
  foundBy: string;
  locations: SyftLocation[];
  metadata?: unknown;
  [k: string]: unknown;
}

export interface SyftRelationship {
  parent: string;
  child: string;
  type: string;
  metadata?: unknown;
}

export interface SyftFile {
  id: string;
  location: SyftLocation;
  [k: string]: unknown;
}

export interface SyftSource {
  id: string;
  name: string;
  version: string;
  type: string;
  metadata: Record<string, unknown>;
  [k: string]: unknown;
}

/** Syft's own JSON format (lossless: `syft convert` makes SPDX and CycloneDX from it). */
export interface SyftDocument {
  artifacts: SyftArtifact[];
  artifactRelationships: SyftRelationship[];
  files?: SyftFile[];
  source: SyftSource;
  distro: unknown;
  descriptor: unknown;
  schema: unknown;
}
