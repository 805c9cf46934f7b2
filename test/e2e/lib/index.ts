// Building blocks for end-to-end tests on the real engine, registry and emulated arm hosts.
export * from "./exec";
export * from "./registry";
export * from "./docker";
export * from "./stack";
export * from "./http";
export * from "./app";
export * from "./pulumiStack";
export * from "./factoryStack";
