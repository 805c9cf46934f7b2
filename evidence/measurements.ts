// What the scanners hand the gates: each figure measured, or the reason it could not be. A figure
// that could not be measured is carried as such to the judging, which never counts it as a pass.
import { errMessage } from "./exec";

/** A value a scanner measured, or the reason it could not be measured. */
export type Measured<T> = { value: T } | { notRun: string };

export function measured<T>(value: T): Measured<T> {
  return { value };
}
export function notRun<T>(reason: string): Measured<T> {
  return { notRun: reason };
}

/** `f` of the measured value; a reason it was not measured stays that reason. */
export function mapMeasured<T, U>(m: Measured<T>, f: (v: T) => U): Measured<U> {
  return "value" in m ? measured(f(m.value)) : m;
}

/** The value of `fn`, or the reason it threw as a `notRun`: one scanner failing leaves the other
 *  checks measured. */
export async function settle<T>(fn: () => Promise<T>): Promise<Measured<T>> {
  try {
    return measured(await fn());
  } catch (e) {
    return notRun(errMessage(e));
  }
}

/** The measured value, or undefined when it was not measured (for reports). */
export function valueOf<T>(m: Measured<T>): T | undefined {
  return "value" in m ? m.value : undefined;
}

export interface Finding {
  /** Rule id, e.g. `DL3002`, `DS002`, `aws-access-key-id`. */
  id: string;
  severity: string;
  message: string;
  /** File (and line) or image layer the finding points at. */
  where?: string;
}

export interface PlatformMeasurements {
  /** Uncompressed image size in bytes, as the engine reports it after pulling by digest. */
  sizeBytes: Measured<number>;
  /** Dive efficiency 0..1. */
  efficiency: Measured<number>;
  /** Dive wasted bytes. */
  wastedBytes: Measured<number>;
  /** Trivy CRITICAL vulnerabilities in the image. */
  criticalVulnerabilities: Measured<number>;
  /** Trivy secrets found in the image (layers and config). */
  imageSecrets: Measured<Finding[]>;
}

export interface CoverageMeasurement {
  lines: number;
  branches: number;
  functions: number;
}

export interface Measurements {
  platforms: Record<string, PlatformMeasurements>;
  /** Line, branch and function coverage percent of app/, measured in the build (Dockerfile `coverage` stage). */
  coverage: Measured<CoverageMeasurement>;
  /** Hadolint findings at error or warning level on the Dockerfile. */
  lint: Measured<Finding[]>;
  /** Trivy misconfigurations (HIGH, CRITICAL) on the Dockerfile. */
  misconfigurations: Measured<Finding[]>;
  /** Trivy secrets in the build context (Dockerfile and sources). */
  secrets: Measured<Finding[]>;
}
