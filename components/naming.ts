// Pure naming rules shared by components, scripts and CI: one place decides every name.
import type { HostArch, Platform } from "./types";

/** `linux/arm/v7` → `linux-arm-v7`: safe in resource names, tags and file names. */
export function platformSlug(platform: Platform | string): string {
  return platform.replace(/\//g, "-");
}

/** The buildx builder name that serves one host architecture on one stack. The BuildHosts
 *  component prints `docker buildx create --name <this>` commands; MultiPlatformImage uses it. */
export function builderName(stack: string, arch: HostArch): string {
  return `image-factory-${stack}-${arch}`;
}
