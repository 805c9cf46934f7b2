// The policy pack's rules as pure functions: resource props (and the stack config) in, violation
// messages out. policy/index.ts wires them into @pulumi/policy; test/unit/policy.test.ts calls them
// directly with resource-shaped arguments. The pack runs in its own analyzer process from this
// folder, so the rules import nothing from the program but its pure CIDR rule. One file per kind
// of resource they judge; this one gathers them.
export * from "./hostRules";
export * from "./imageRules";
export * from "./ingressRules";
export * from "./resources";
export * from "./stackConfig";
