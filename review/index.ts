// The pull-request review's pure core: evidence in, diff and Markdown/JSON out. See model.ts.
export * from "./model";
export * from "./gates";
export * from "./sbomDiff";
export * from "./vulnDiff";
export * from "./markdown";
