// Shared by the deploy tests: parse rendered manifests, validate them against the Kubernetes
// API schemas (kubernetes-models), and answer the questions the tests ask about them.
import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { repoRoot, sluiceBin } from '@sluice/testing';

export const run = promisify(execFile);

/** A Kubernetes object as parsed from YAML; the tests read it loosely. */
export type K8sObject = Record<string, any> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

/** Every non-empty document of a multi-document YAML stream; a parse error fails loudly. */
export function parseManifests(text: string): K8sObject[] {
  const docs: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    docs.push(value as K8sObject);
  }
  return docs;
}

/** `apps/v1` + `Deployment` -> the kubernetes-models module path `apps/v1/Deployment`; core `v1` stays `v1`. */
function modelPath(object: K8sObject): string {
  return `${object.apiVersion}/${object.kind}`;
}

interface Model {
  validate(): void;
}

/**
 * Checks every object two ways and returns one line per problem, naming the object:
 * 1. kubernetes-models' validator (the OpenAPI schema of the API server: types, required
 *    fields, formats and enums);
 * 2. TypeScript excess-property checking against the same package's generated types, because
 *    those schemas allow unknown fields: a misspelt `readinesProbe` would pass (1) and be
 *    dropped silently by a real API server.
 */
export async function validateManifests(objects: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  const typed: { name: string; path: string; object: K8sObject }[] = [];
  for (const object of objects) {
    const name = `${object.kind}/${object.metadata?.name ?? '?'}`;
    const path = modelPath(object);
    let module: Record<string, new (data: unknown) => Model>;
    try {
      module = (await import(/* @vite-ignore */ `kubernetes-models/${path}`)) as Record<string, new (data: unknown) => Model>;
    } catch {
      problems.push(`${name}: no Kubernetes schema for apiVersion ${object.apiVersion} kind ${object.kind}`);
      continue;
    }
    const Class = module[object.kind]!;
    try {
      new Class(object).validate();
    } catch (error) {
      problems.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
    typed.push({ name, path, object });
  }
  problems.push(...excessProperties(typed));
  return problems;
}

let previousProgram: ts.Program | undefined;

function excessProperties(objects: readonly { name: string; path: string; object: K8sObject }[]): string[] {
  // A virtual module beside this file, so that node_modules resolves as for a real one.
  const file = join(import.meta.dirname, '__manifests__.ts');
  const lines: string[] = [];
  const owners: { line: number; name: string }[] = [];
  objects.forEach(({ path, object }, i) => lines.push(`import type { I${object.kind} as T${i} } from 'kubernetes-models/${path}';`));
  objects.forEach(({ name, object }, i) => {
    owners.push({ line: lines.length, name });
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(object)};`);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFileHost = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? source : readFileHost(name));
  // The previous program lends its parsed library and kubernetes-models files: only the
  // virtual module changes between calls.
  const program = ts.createProgram({ rootNames: [file], options, host, ...(previousProgram ? { oldProgram: previousProgram } : {}) });
  previousProgram = program;
  const diagnostics = [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()];
  return diagnostics.map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const owner = [...owners].reverse().find((o) => o.line <= line);
    return `${owner?.name ?? 'manifests'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

/** Compares `text` with the golden file, or rewrites it with UPDATE_GOLDEN=1. Returns the golden text. */
export async function golden(name: string, text: string): Promise<string> {
  const path = join(import.meta.dirname, 'golden', name);
  if (process.env.UPDATE_GOLDEN === '1') {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
    return text;
  }
  return readFile(path, 'utf8');
}

export function find(objects: readonly K8sObject[], kind: string, nameSuffix: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (!found) throw new Error(`no ${kind} named *${nameSuffix} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** The pod template's containers of a workload. */
export function containers(workload: K8sObject): Record<string, any>[] {
  return workload.spec.template.spec.containers as Record<string, any>[];
}

/** The value of `--flag=value` in a container's args. */
export function flag(container: Record<string, any>, name: string): string | undefined {
  const args = (container.args ?? []) as string[];
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** The `--flags` a `sluice <command> --help` documents, from the real built binary. */
export async function documentedFlags(command: 'controller' | 'agent'): Promise<Set<string>> {
  const { stdout } = await run(process.execPath, [sluiceBin, command, '--help']);
  return new Set([...stdout.matchAll(/^\s+(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!));
}

/** True when every key/value of `selector` is among `labels`. */
export function selects(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/**
 * Checks that hold for any Sluice install, whatever produced it (Helm or kustomize): returns
 * one line per broken rule so that a test shows them all at once.
 */
export function sluiceInvariants(objects: readonly K8sObject[], controllerFlags: Set<string>, agentFlags: Set<string>): string[] {
  const problems: string[] = [];
  const workloads = objects.filter((o) => ['Deployment', 'DaemonSet', 'StatefulSet'].includes(o.kind));
  for (const w of workloads) {
    const name = `${w.kind}/${w.metadata.name}`;
    const podLabels = w.spec.template.metadata.labels as Record<string, string>;
    if (!selects(w.spec.selector.matchLabels, podLabels)) problems.push(`${name}: selector does not match its pod labels`);
    const pod = w.spec.template.spec;
    if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${name}: pods must run as non-root`);
    for (const c of containers(w)) {
      const where = `${name} container ${c.name}`;
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) problems.push(`${where}: needs cpu and memory requests`);
      if (!c.readinessProbe || !c.livenessProbe) problems.push(`${where}: needs readiness and liveness probes`);
      const portNames = new Set(((c.ports ?? []) as { name?: string }[]).map((p) => p.name));
      for (const probe of [c.readinessProbe, c.livenessProbe]) {
        const port = probe?.httpGet?.port;
        if (typeof port === 'string' && !portNames.has(port)) problems.push(`${where}: probe port ${port} is not a named container port`);
      }
      if (c.securityContext?.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation must be false`);
      const mounts = new Set(((c.volumeMounts ?? []) as { name: string }[]).map((m) => m.name));
      const volumes = new Set([...((pod.volumes ?? []) as { name: string }[]).map((v) => v.name), ...((w.spec.volumeClaimTemplates ?? []) as K8sObject[]).map((v) => v.metadata.name)]);
      for (const m of mounts) if (!volumes.has(m)) problems.push(`${where}: mounts undeclared volume ${m}`);
    }
  }
  const sluiceContainers = workloads.flatMap((w) => containers(w).filter((c) => c.name === 'controller' || c.name === 'agent').map((c) => ({ w, c })));
  for (const { w, c } of sluiceContainers) {
    const documented = c.name === 'controller' ? controllerFlags : agentFlags;
    const args = c.args as string[];
    if (args[0] !== c.name) problems.push(`${w.metadata.name}: first argument must be the command "${c.name}", not "${args[0]}"`);
    for (const arg of args.slice(1)) {
      const name = /^(--[a-z0-9-]+)/.exec(arg)?.[1];
      if (!name || !documented.has(name)) problems.push(`${w.metadata.name}: "${arg}" is not a flag that \`sluice ${c.name} --help\` documents`);
    }
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      const path = probe?.httpGet?.path as string | undefined;
      if (path !== '/readyz' && path !== '/healthz') problems.push(`${w.metadata.name}: probes must use /healthz and /readyz, not ${path}`);
    }
    const admin = ((c.ports ?? []) as { name: string; containerPort: number }[]).find((p) => p.name === 'admin');
    if (!admin || flag(c, 'admin-addr') !== `0.0.0.0:${admin.containerPort}`) problems.push(`${w.metadata.name}: --admin-addr must listen on all interfaces at the admin port`);
  }
  // Services and PDBs must select pods that exist.
  for (const o of objects.filter((x) => x.kind === 'Service' || x.kind === 'PodDisruptionBudget')) {
    const selector = (o.kind === 'Service' ? o.spec.selector : o.spec.selector?.matchLabels) as Record<string, string>;
    const matched = workloads.filter((w) => selects(selector, w.spec.template.metadata.labels));
    if (matched.length === 0) problems.push(`${o.kind}/${o.metadata.name}: selects no pods`);
    if (o.kind === 'Service') {
      for (const port of (o.spec.ports ?? []) as { targetPort: string | number; name: string }[]) {
        const exposed = matched.some((w) =>
          containers(w).some((c) => ((c.ports ?? []) as { name: string; containerPort: number }[]).some((p) => p.name === port.targetPort || p.containerPort === port.targetPort)),
        );
        if (!exposed) problems.push(`Service/${o.metadata.name}: port ${port.name} targets ${port.targetPort}, which no selected container declares`);
      }
    }
  }
  // etcd: an odd member count, and an initial cluster that names exactly its members by their stable names.
  const etcd = workloads.find((w) => w.kind === 'StatefulSet' && w.metadata.name.endsWith('etcd'));
  if (etcd) {
    const replicas = etcd.spec.replicas as number;
    const name = etcd.metadata.name;
    if (replicas % 2 !== 1) problems.push(`etcd: ${replicas} members is not an odd number`);
    const headless = objects.find((o) => o.kind === 'Service' && o.metadata.name === etcd.spec.serviceName);
    if (headless?.spec.clusterIP !== 'None') problems.push(`etcd: serviceName ${etcd.spec.serviceName} must be a headless Service`);
    if (etcd.spec.podManagementPolicy !== 'Parallel') problems.push('etcd: members must start in parallel (they wait for each other)');
    const c = containers(etcd)[0]!;
    const expected = Array.from({ length: replicas }, (_, i) => `${name}-${i}=http://${name}-${i}.${etcd.spec.serviceName}:2380`).join(',');
    if (flag(c, 'initial-cluster') !== expected) problems.push(`etcd: --initial-cluster is ${flag(c, 'initial-cluster')}, expected ${expected}`);
    if (flag(c, 'initial-advertise-peer-urls') !== `http://$(POD_NAME).${etcd.spec.serviceName}:2380`) problems.push('etcd: --initial-advertise-peer-urls must be the member\'s stable name');
    const controller = workloads.find((w) => w.metadata.name.endsWith('controller'));
    const endpoints = controller ? flag(containers(controller)[0]!, 'etcd-endpoints') : undefined;
    const members = Array.from({ length: replicas }, (_, i) => `http://${name}-${i}.${etcd.spec.serviceName}:2379`).join(',');
    if (endpoints !== members) problems.push(`controller: --etcd-endpoints is ${endpoints}, expected every member: ${members}`);
  }
  // Controllers: etcd store (leader election), a stable --id and a reachable --advertise-addr from the downward API.
  for (const w of workloads.filter((x) => x.metadata.name.endsWith('controller'))) {
    const c = containers(w)[0]!;
    const env = new Map(((c.env ?? []) as { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    if (flag(c, 'store') !== 'etcd') problems.push('controller: --store must be etcd (leader election needs it)');
    if (!flag(c, 'advertise-addr')?.startsWith('$(POD_IP):') || env.get('POD_IP') !== 'status.podIP') problems.push('controller: --advertise-addr must be the pod IP from the downward API');
    if (flag(c, 'id') !== '$(POD_NAME)' || env.get('POD_NAME') !== 'metadata.name') problems.push('controller: --id must be the pod name from the downward API');
    if ((w.spec.replicas as number) < 2) problems.push('controller: at least 2 replicas');
  }
  // Agents reach the controllers through the controller Service's gRPC port.
  const controllerService = objects.find((o) => o.kind === 'Service' && o.metadata.name.endsWith('controller'));
  const grpcPort = (controllerService?.spec.ports as { name: string; port: number }[] | undefined)?.find((p) => p.name === 'grpc')?.port;
  for (const w of workloads.filter((x) => x.metadata.name.endsWith('agent'))) {
    const target = flag(containers(w)[0]!, 'controller') ?? '';
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    if (host.split('.')[0] !== controllerService?.metadata.name || port !== grpcPort) problems.push(`agent: --controller ${target} is not the controller Service's gRPC port`);
  }
  return problems;
}

export { repoRoot };
