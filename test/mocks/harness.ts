// Shared Pulumi mocks for component and program tests: records every resource and invoke, and
// answers like the real providers would (digests, refs, AMI ids). Only AWS, GitHub and the
// registry-facing docker-build calls are mocked; everything else is the real SDK.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import type { GatesConfig } from "../../evidence/gates";
import { passedResults } from "../lib/gateResults";

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** The id a read (such as a StackReference) asked for. */
  id?: string;
  /** What the program sent the engine with the registration (reads such as a StackReference have none). */
  request?: {
    /** This resource's URN, once the (mock) engine answered. */
    urn?: string;
    /** URN of the parent. */
    parent: string;
    /** Every resource URN the engine is told this one depends on (dependsOn and input dependencies). */
    dependencies: string[];
    retainOnDelete?: boolean;
  };
}

export interface Harness {
  resources: Registered[];
  calls: Array<{ token: string; inputs: Record<string, unknown> }>;
  /** Exports a StackReference returns, keyed by the referenced stack name. */
  stackOutputs: Record<string, Record<string, unknown>>;
  /** Milliseconds the mock engine takes to create a resource of the given type, or of the given
   *  `<type> <name>` (which wins; default 0), so a test can tell an order the program enforces
   *  from one that merely happens. */
  delays: Record<string, number>;
  /** `register <type> <name>` when the engine receives a registration, `created <type> <name>`
   *  when it answers, in the order they happened. */
  events: string[];
  byType(type: string): Registered[];
}

/** The slice of the SDK's RegisterResourceRequest the harness reads. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
  getRetainondelete(): boolean;
}
type RegisterCallback = (err: unknown, resp?: { getUrn(): string }) => void;

const pem = (kind: string, seed: string): string =>
  `-----BEGIN ${kind}-----\n${Buffer.from(seed).toString("base64")}\n-----END ${kind}-----\n`;

export const fakeDigest = (seed: string): string =>
  `sha256:${crypto.createHash("sha256").update(seed).digest("hex")}`;

export type MockAnswer = { id: string; state: Record<string, unknown> };
type Inputs = Record<string, unknown>;

/** Mocks of a test file's own, for when the providers must answer otherwise than installMocks'
 *  do: each registration is recorded in `log.resources` and each invoke in `log.calls` before
 *  `resource` and `invoke` answer it (an invoke answers with its inputs unless told otherwise). */
export async function recordingMocks(
  log: { resources: Registered[]; calls?: Harness["calls"] },
  resource: (args: pulumi.runtime.MockResourceArgs, inputs: Inputs) => MockAnswer,
  invoke: (args: pulumi.runtime.MockCallArgs, inputs: Inputs) => Inputs = (_, inputs) => inputs,
  stack = "dev",
): Promise<void> {
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Inputs;
        const read = args.id ? { id: args.id } : {};
        log.resources.push({ type: args.type, name: args.name, inputs, ...read });
        return resource(args, inputs);
      },
      call(args) {
        const inputs = args.inputs as Inputs;
        log.calls?.push({ token: args.token, inputs });
        return invoke(args, inputs);
      },
    },
    "image-factory",
    stack,
    false,
  );
}

export async function installMocks(
  project = "image-factory",
  stack = "dev",
  preview = false,
): Promise<Harness> {
  const h: Harness = {
    resources: [],
    calls: [],
    stackOutputs: {},
    delays: {},
    events: [],
    byType: (type) => h.resources.filter((r) => r.type === type),
  };
  // The registration the monitor is handling right now: the mock monitor calls newResource
  // synchronously from registerResource, so newResource pairs its record with the request.
  let current: Registered["request"];
  const answer = (
    type: string,
    name: string,
    result: MockAnswer,
  ): MockAnswer | Promise<MockAnswer> => {
    const done = (): MockAnswer => {
      h.events.push(`created ${type} ${name}`);
      return result;
    };
    const delay = h.delays[`${type} ${name}`] ?? h.delays[type] ?? 0;
    return delay === 0 ? done() : new Promise((res) => setTimeout(() => res(done()), delay));
  };
  await pulumi.runtime.setMocks(
    {
      // Reads (a StackReference) carry an id and are answered at once.
      newResource: (args) =>
        args.id ? mockState(args) : answer(args.type, args.name, mockState(args)),
      call: (args) => mockCall(args),
    },
    project,
    stack,
    preview,
  );
  // The engine-facing request (parent, dependencies, retainOnDelete) is not part of the mock API,
  // so the monitor's registerResource is wrapped to record it.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: RegisterCallback): void;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const request: NonNullable<Registered["request"]> = {
      parent: req.getParent(),
      dependencies: [...req.getDependenciesList()].sort(),
      retainOnDelete: req.getRetainondelete(),
    };
    h.events.push(`register ${req.getType()} ${req.getName()}`);
    current = request;
    register(req, (err, resp) => {
      if (resp !== undefined) request.urn = resp.getUrn();
      cb(err, resp);
    });
    current = undefined;
  };
  return h;

  function mockState(args: pulumi.runtime.MockResourceArgs): MockAnswer {
    const inputs = args.inputs as Record<string, unknown>;
    h.resources.push({ type: args.type, name: args.name, inputs, request: current });
    /** The provider's answer: the inputs, plus what it computes. */
    const withInputs = (id: string, computed: Record<string, unknown>): MockAnswer => ({
      id,
      state: { ...inputs, ...computed },
    });
    current = undefined;
    // Dynamic resources are typed `pulumi-nodejs:dynamic/<module>:<Type>`.
    switch (
      args.type.startsWith("pulumi-nodejs:dynamic") ? "pulumi-nodejs:dynamic:Resource" : args.type
    ) {
      case "docker-build:index:Image": {
        const digest = fakeDigest(`image:${args.name}:${JSON.stringify(inputs.buildArgs ?? {})}`);
        const tags = (inputs.tags as string[] | undefined) ?? [];
        return {
          id: args.name,
          state: { ...inputs, digest, ref: `${tags[0]}@${digest}`, contextHash: "ctx" },
        };
      }
      case "docker-build:index:Index": {
        // `buildx imagetools create` copies a single index source unchanged (same digest);
        // several sources make a new manifest list.
        const sources = inputs.sources as string[];
        const single = sources.length === 1 ? /@(sha256:[0-9a-f]{64})$/.exec(sources[0]) : null;
        const digest = single ? single[1] : fakeDigest(`index:${sources.join(",")}`);
        return { id: args.name, state: { ...inputs, ref: `${inputs.tag as string}@${digest}` } };
      }
      case "pulumi:pulumi:StackReference": {
        const name = inputs.name as string;
        return {
          id: name,
          state: { ...inputs, outputs: h.stackOutputs[name] ?? {}, secretOutputNames: [] },
        };
      }
      case "pulumi-nodejs:dynamic:Resource": {
        if (args.type === "pulumi-nodejs:dynamic/publication:Tags") {
          // The publish step (evidence/publish.ts) writes the moving tags at the Index's digest
          // and returns the gate results naming that digest.
          const indexRef = inputs.indexRef as string;
          const digest = indexRef.slice(indexRef.lastIndexOf("@") + 1);
          const image = inputs.imageName as string;
          const gateResults = { ...(inputs.gateResults as Record<string, unknown>), digest };
          return {
            id: digest,
            state: {
              ...inputs,
              digest,
              gateResults,
              publishedTags: (inputs.tags as string[]).map((t) => `${image}:${t}`),
            },
          };
        }
        if (args.type === "pulumi-nodejs:dynamic/supplychain:Scans") {
          // The scans of exactly the digests asked for (evidence/run.ts scanEvidence's shape).
          const digests = (inputs.platformDigests ?? {}) as Record<string, string>;
          const scanned = {
            imageName: inputs.imageName,
            platforms: Object.entries(digests).map(([platform, digest]) => ({
              platform,
              evidence: { digest },
            })),
            context: inputs.contextChecks === true ? { tools: {}, seconds: {} } : undefined,
            notes: [],
          };
          return { id: args.name, state: { ...inputs, scanned } };
        }
        // SupplyChainEvidence runs real scanners in its dynamic provider; e2e tests cover that.
        // Here it answers with the shape of its outputs (gate results bound to what they
        // judged, as evidence/run.ts returns them) so the program's wiring is checked.
        const digests = (inputs.platformDigests ?? {}) as Record<string, string>;
        const image = inputs.imageName as string;
        const sbomLocations = Object.fromEntries(
          Object.entries(digests).map(([p, d]) => [p, `oci://${image}@${d}#sbom`]),
        );
        const gateResults = passedResults(inputs.gates as GatesConfig, {
          imageName: image,
          platformDigests: digests,
          sourceRevision: inputs.sourceRevision as string,
        });
        return { id: args.name, state: { ...inputs, sbomLocations, gateResults, platforms: {} } };
      }
      case "tls:index/privateKey:PrivateKey":
        return withInputs(args.name, {
          privateKeyPem: pem("PRIVATE KEY", args.name),
          publicKeyPem: pem("PUBLIC KEY", args.name),
        });
      case "tls:index/certRequest:CertRequest":
        return withInputs(args.name, { certRequestPem: pem("CERTIFICATE REQUEST", args.name) });
      case "tls:index/selfSignedCert:SelfSignedCert":
      case "tls:index/locallySignedCert:LocallySignedCert":
        return withInputs(args.name, { certPem: pem("CERTIFICATE", args.name) });
      case "aws:iam/role:Role":
      case "aws:iam/instanceProfile:InstanceProfile":
        return withInputs(args.name, {
          name: args.name,
          arn: `arn:aws:iam::123456789012:${args.type.includes("role") ? "role" : "instance-profile"}/${args.name}`,
        });
      case "aws:ebs/volume:Volume": {
        const id = `vol-0${crypto.createHash("sha256").update(args.name).digest("hex").slice(0, 16)}`;
        return withInputs(id, { arn: `arn:aws:ec2:eu-west-1:123456789012:volume/${id}` });
      }
      case "aws:ec2/instance:Instance":
        return withInputs(`i-${args.name}`, {
          publicIp: "198.51.100.10",
          privateIp: "198.51.100.11",
          arn: `arn:aws:ec2:::instance/${args.name}`,
        });
      case "aws:ec2/eip:Eip":
        return withInputs(`eipalloc-${args.name}`, {
          publicIp: "198.51.100.20",
          publicDns: "ec2-198-51-100-20.compute.amazonaws.com",
        });
      default:
        return withInputs(`${args.name}-id`, {
          arn: `arn:aws:mock:::${args.name}`,
          bucket: inputs.bucket ?? `${args.name}-bucket`,
        });
    }
  }

  function mockCall(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    const inputs = args.inputs as Record<string, unknown>;
    h.calls.push({ token: args.token, inputs });
    switch (args.token) {
      case "aws:ssm/getParameter:getParameter": {
        const name = inputs.name as string;
        return {
          name,
          value: name.includes("arm64") ? "ami-0arm64000000000" : "ami-0x8664000000000",
          type: "String",
          id: name,
        };
      }
      case "github:index/getUser:getUser":
        return { id: "1001", login: inputs.username, nodeId: "U_1" };
      case "github:index/getTeam:getTeam":
        return { id: "2002", slug: inputs.slug, nodeId: "T_1" };
      case "aws:index/getRegion:getRegion":
        return { name: "eu-west-1", id: "eu-west-1", region: "eu-west-1" };
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return {
          accountId: "123456789012",
          arn: "arn:aws:iam::123456789012:user/ci",
          userId: "AID",
        };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
      case "aws:ec2/getVpc:getVpc":
        return { id: "vpc-123", cidrBlock: "198.51.100.0/24" };
      case "aws:ec2/getSubnet:getSubnet":
        return { id: inputs.id, vpcId: "vpc-123", availabilityZone: "eu-west-1a" };
      case "aws:ec2/getSubnets:getSubnets":
        return { ids: ["subnet-1", "subnet-2"], id: "subnets" };
      default:
        return inputs;
    }
  }
}

// The SDK's marker for a secret value in serialized (mock) inputs.
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** True when a mock input arrived as a Pulumi secret. */
export function isSecretInput(v: unknown): boolean {
  return typeof v === "object" && v !== null && SECRET_SIG in v;
}

/** The value inside a secret mock input (or the value itself). */
export function unwrapSecret<T>(v: unknown): T {
  return (isSecretInput(v) ? (v as { value: unknown }).value : v) as T;
}

/** Resolves an Output (mock runs resolve everything that is known). */
export function resolve<T>(o: pulumi.Input<T>): Promise<T> {
  return new Promise((res) => pulumi.output(o).apply((v) => res(v as T)));
}

export async function isSecret(o: pulumi.Output<unknown>): Promise<boolean> {
  return pulumi.isSecret(o);
}

const ROOT = path.resolve(__dirname, "../..");

/** The config the engine would hand the program for a stack: Pulumi.yaml defaults + stack file. */
export function stackConfig(stack: string): Record<string, string> {
  const stackFile = parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
    config?: Record<string, unknown>;
  };
  return engineConfig(stackFile.config ?? {});
}

/** The config the engine would hand the program for a stack file's `config`: Pulumi.yaml
 *  defaults + `values`. */
export function engineConfig(values: Record<string, unknown>): Record<string, string> {
  const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
    config: Record<string, { default?: unknown }>;
  };
  const out: Record<string, string> = {};
  const put = (k: string, v: unknown) => {
    out[k] = typeof v === "string" ? v : JSON.stringify(v);
  };
  for (const [k, decl] of Object.entries(project.config))
    if (decl.default !== undefined) put(k, decl.default);
  for (const [k, v] of Object.entries(values)) put(k, v);
  return out;
}
