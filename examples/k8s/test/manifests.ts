// Reads the example manifests the way the cluster would: kustomize overlays (resources and namespace only, the
// features these overlays use), Services selecting pods, named ports, Secret and ConfigMap references, Flagger's
// generated Services, Argo's argument templating, and the files and variables a container really sees.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** The folder holding the manifests. */
export const MANIFESTS = resolve(import.meta.dirname, '..');
/** The overlays a user applies with `kubectl apply -k`. */
export const OVERLAYS = ['deployment', 'argo-canary', 'argo-bluegreen', 'flagger'] as const;
export type Overlay = (typeof OVERLAYS)[number];

// Manifests are free-form YAML: tests read fields freely and let assertions fail when a shape is wrong.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** One Kubernetes object and the file it came from. */
export interface Resource {
  readonly file: string;
  readonly object: Json;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ClusterAnalysisTemplate']);

/** Parses every document of a YAML file (comments and empty documents skipped); a syntax error throws. */
export function readYaml(file: string): Json[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'));
  const objects: Json[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
    const value: unknown = document.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

/**
 * Builds a kustomization the way `kubectl apply -k` does for the features used here (`resources` folders and files,
 * `namespace`). Throws when a listed resource is missing, when a YAML file of the folder is not listed (it would
 * silently not be applied) unless named in `applyLater`, or when a field this reader does not understand appears.
 */
export function build(folder: string, applyLater: readonly string[] = []): Resource[] {
  const directory = resolve(MANIFESTS, folder);
  const kustomization = readYaml(join(directory, 'kustomization.yaml'))[0];
  const known = new Set(['apiVersion', 'kind', 'resources', 'namespace']);
  for (const key of Object.keys(kustomization)) {
    if (!known.has(key)) throw new Error(`${folder}/kustomization.yaml: unsupported field ${key}`);
  }
  const listed: string[] = kustomization.resources ?? [];
  const resources: Resource[] = [];
  for (const entry of listed) {
    const path = resolve(directory, entry);
    let stats;
    try {
      stats = statSync(path);
    } catch {
      throw new Error(`${folder}/kustomization.yaml lists ${entry}, which does not exist`);
    }
    if (stats.isDirectory()) resources.push(...build(relative(MANIFESTS, path)));
    else for (const object of readYaml(path)) resources.push({ file: relative(MANIFESTS, path), object });
  }
  const unlisted = readdirSync(directory).filter(
    (name) =>
      /\.ya?ml$/.test(name) && name !== 'kustomization.yaml' && !listed.includes(name) && !applyLater.includes(name),
  );
  if (unlisted.length > 0) throw new Error(`${folder}/kustomization.yaml does not list ${unlisted.join(', ')}`);
  if (typeof kustomization.namespace === 'string') {
    for (const resource of resources) {
      if (!CLUSTER_SCOPED.has(resource.object.kind)) resource.object.metadata.namespace = kustomization.namespace;
    }
  }
  return resources;
}

/** The objects of a kind in a built overlay. */
export function ofKind(resources: readonly Resource[], kind: string): Json[] {
  return resources.filter((resource) => resource.object.kind === kind).map((resource) => resource.object);
}

/** The one object of a kind and name; throws when absent. */
export function find(resources: readonly Resource[], kind: string, name: string): Json {
  const found = ofKind(resources, kind).find((object) => object.metadata?.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found;
}

/** The workload carrying the pod template (Deployment or Rollout) of an overlay. */
export function workload(resources: readonly Resource[]): Json {
  const workloads = [...ofKind(resources, 'Rollout'), ...ofKind(resources, 'Deployment')];
  if (workloads.length !== 1) throw new Error(`expected one workload, found ${workloads.length}`);
  return workloads[0];
}

/** A Service selects a pod when every selector label is on the pod. */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** A container port resolved from a number or a name, as the kubelet and Services resolve them. */
export interface ContainerPort {
  readonly container: string;
  readonly name: string | undefined;
  readonly containerPort: number;
}

/** Resolves a port (number or IANA name) against the containers of a pod spec; throws when nothing matches. */
export function resolvePort(podSpec: Json, port: number | string, container?: string): ContainerPort {
  const containers: Json[] = podSpec.containers.filter(
    (item: Json) => container === undefined || item.name === container,
  );
  for (const item of containers) {
    for (const candidate of item.ports ?? []) {
      if (typeof port === 'number' ? candidate.containerPort === port : candidate.name === port)
        return { container: item.name, name: candidate.name, containerPort: candidate.containerPort };
    }
  }
  throw new Error(`port ${String(port)} is not a port of ${container ?? 'any container'}`);
}

/** Where a request to `service:port` lands in a pod: the container port behind the Service port. */
export function serviceTarget(service: Json, port: number, podSpec: Json): ContainerPort {
  const servicePort = (service.spec.ports ?? []).find((item: Json) => item.port === port);
  if (servicePort === undefined) throw new Error(`Service ${service.metadata.name} has no port ${port}`);
  return resolvePort(podSpec, servicePort.targetPort ?? servicePort.port);
}

/**
 * The Services Flagger generates for a Canary (pkg/router/kubernetes_default.go): `<svc>`, `<svc>-primary`,
 * `<svc>-canary`, with `service.port` → `service.targetPort` and, with `portDiscovery`, every other container port
 * under its own name and number (pkg/canary/util.go getPorts). Selectors use the Deployment's selector label, its
 * value suffixed `-primary` for the primary pods (which is why the primary pod labels differ).
 */
export function flaggerServices(canary: Json, deployment: Json): { services: Json[]; primaryLabels: Json } {
  const name = canary.spec.service.name ?? canary.spec.targetRef.name;
  const [selectorKey, selectorValue] = Object.entries(
    deployment.spec.selector.matchLabels as Record<string, string>,
  )[0]!;
  const podSpec = deployment.spec.template.spec;
  const main = canary.spec.service;
  const ports: Json[] = [{ name: main.portName ?? 'http', port: main.port, targetPort: main.targetPort ?? main.port }];
  if (main.portDiscovery === true) {
    for (const container of podSpec.containers) {
      for (const [index, port] of (container.ports ?? []).entries()) {
        const isMain =
          typeof main.targetPort === 'string'
            ? port.name === main.targetPort
            : port.containerPort === (main.targetPort ?? main.port);
        if (isMain) continue;
        ports.push({
          name: port.name ?? `tcp-${container.name}-${index}`,
          port: port.containerPort,
          targetPort: port.containerPort,
        });
      }
    }
  }
  const service = (serviceName: string, value: string): Json => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName, namespace: canary.metadata.namespace },
    spec: { selector: { [selectorKey]: value }, ports },
  });
  return {
    services: [
      service(name, `${selectorValue}-primary`),
      service(`${name}-primary`, `${selectorValue}-primary`),
      service(`${name}-canary`, selectorValue),
    ],
    primaryLabels: { ...deployment.spec.template.metadata.labels, [selectorKey]: `${selectorValue}-primary` },
  };
}

/**
 * Splits a Service URL used inside the cluster: `<service>[.<namespace>[.svc[.cluster.local]]]:<port>`. A bare name
 * resolves in the caller's namespace, which for Argo Rollouts is the controller's own: `callerNamespace` says which.
 */
export function clusterAddress(
  url: string,
  callerNamespace: string | undefined,
): { service: string; namespace: string | undefined; port: number; path: string } {
  const parsed = new URL(url);
  const labels = parsed.hostname.split('.');
  const service = labels[0]!;
  let namespace: string | undefined = labels[1];
  const rest = labels.slice(2).join('.');
  if (!['', 'svc', 'svc.cluster.local'].includes(rest))
    throw new Error(`${parsed.hostname} is not a cluster Service name`);
  namespace ??= callerNamespace;
  const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
  return { service, namespace, port, path: `${parsed.pathname}${parsed.search}` };
}

/** Values of a Secret (`data` base64, `stringData` plain) or a ConfigMap (`data` plain, `binaryData` base64). */
export function dataOf(object: Json): Record<string, string> {
  const values: Record<string, string> = {};
  const encoded = (object.kind === 'Secret' ? object.data : object.binaryData) ?? {};
  for (const [key, value] of Object.entries(encoded as Record<string, string>))
    values[key] = Buffer.from(value, 'base64').toString('utf8');
  if (object.kind === 'ConfigMap')
    for (const [key, value] of Object.entries((object.data ?? {}) as Record<string, string>)) values[key] = value;
  for (const [key, value] of Object.entries((object.stringData ?? {}) as Record<string, string>)) values[key] = value;
  return values;
}

/** The value a `secretKeyRef`/`configMapKeyRef` resolves to; throws when the object or key does not exist. */
export function keyRef(
  resources: readonly Resource[],
  kind: 'Secret' | 'ConfigMap',
  name: string,
  key: string,
): string {
  const object = find(resources, kind, name);
  const values = dataOf(object);
  if (!(key in values)) throw new Error(`${kind} ${name} has no key ${key}`);
  return values[key]!;
}

/** A pod as the kubelet would start it, for one container: its environment and mounted files. */
export interface SimulatedContainer {
  readonly env: Record<string, string>;
  readonly args: string[];
  /** Maps a path inside the container to the folder that holds it on this machine. */
  readonly path: (inside: string) => string;
}

/** Identity of a simulated pod. */
export interface PodIdentityInput {
  readonly name: string;
  readonly namespace: string;
  /** Labels added by the controller (`pod-template-hash`, `rollouts-pod-template-hash`). */
  readonly extraLabels: Record<string, string>;
}

function downwardValue(fieldPath: string, pod: PodIdentityInput, labels: Record<string, string>): string {
  if (fieldPath === 'metadata.name') return pod.name;
  if (fieldPath === 'metadata.namespace') return pod.namespace;
  const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath);
  if (label !== null) {
    const value = labels[label[1]!];
    if (value === undefined) throw new Error(`downward API: no label ${label[1]!}`);
    return value;
  }
  if (fieldPath === 'metadata.labels' || fieldPath === 'metadata.annotations') {
    const source = fieldPath === 'metadata.labels' ? labels : {};
    return Object.entries(source)
      .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
      .join('\n');
  }
  throw new Error(`downward API field ${fieldPath} is not simulated`);
}

/**
 * Projects the volumes a container mounts into a temporary folder (Secret and ConfigMap items, downward API files)
 * and resolves its environment (values, `fieldRef`, `secretKeyRef`, `configMapKeyRef`). Absolute paths inside the
 * container map to that folder through `path()`. Throws on any reference that would fail in the cluster.
 */
export function simulateContainer(
  resources: readonly Resource[],
  template: Json,
  containerName: string,
  pod: PodIdentityInput,
): SimulatedContainer {
  const podSpec = template.spec;
  const container = podSpec.containers.find((item: Json) => item.name === containerName);
  if (container === undefined) throw new Error(`no container ${containerName}`);
  const labels: Record<string, string> = { ...template.metadata.labels, ...pod.extraLabels };
  const root = mkdtempSync(join(tmpdir(), 'gantry-k8s-'));
  const mounts: { inside: string; outside: string }[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = (podSpec.volumes ?? []).find((item: Json) => item.name === mount.name);
    if (volume === undefined) throw new Error(`${containerName} mounts ${mount.name}, which is not a volume`);
    const outside = join(root, mount.name);
    mkdirSync(outside, { recursive: true });
    const write = (path: string, text: string): void => {
      mkdirSync(dirname(join(outside, path)), { recursive: true });
      writeFileSync(join(outside, path), text);
    };
    if (volume.secret !== undefined || volume.configMap !== undefined) {
      const kind = volume.secret !== undefined ? 'Secret' : 'ConfigMap';
      const name = volume.secret?.secretName ?? volume.configMap?.name;
      const values = dataOf(find(resources, kind, name));
      const items: Json[] =
        (volume.secret ?? volume.configMap).items ?? Object.keys(values).map((key) => ({ key, path: key }));
      for (const item of items) {
        if (!(item.key in values)) throw new Error(`${kind} ${name} has no key ${item.key}`);
        write(item.path, values[item.key]!);
      }
    } else if (volume.downwardAPI !== undefined) {
      for (const item of volume.downwardAPI.items)
        write(item.path, downwardValue(item.fieldRef.fieldPath, pod, labels));
    } else if (volume.emptyDir === undefined) {
      throw new Error(`volume ${volume.name}: kind not simulated`);
    }
    mounts.push({ inside: mount.mountPath, outside });
  }
  const path = (inside: string): string => {
    const mount = mounts
      .filter((item) => inside === item.inside || inside.startsWith(`${item.inside}/`))
      .sort((a, b) => b.inside.length - a.inside.length)[0];
    if (mount === undefined) throw new Error(`${inside} is not inside a mounted volume of ${containerName}`);
    return join(mount.outside, inside.slice(mount.inside.length));
  };
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = String(variable.value);
    else if (variable.valueFrom?.fieldRef !== undefined)
      env[variable.name] = downwardValue(variable.valueFrom.fieldRef.fieldPath, pod, labels);
    else if (variable.valueFrom?.secretKeyRef !== undefined)
      env[variable.name] = keyRef(
        resources,
        'Secret',
        variable.valueFrom.secretKeyRef.name,
        variable.valueFrom.secretKeyRef.key,
      );
    else if (variable.valueFrom?.configMapKeyRef !== undefined)
      env[variable.name] = keyRef(
        resources,
        'ConfigMap',
        variable.valueFrom.configMapKeyRef.name,
        variable.valueFrom.configMapKeyRef.key,
      );
    else throw new Error(`env ${variable.name}: source not simulated`);
  }
  return { env, args: [...(container.args ?? [])], path };
}

/** Replaces container paths in variables and arguments by their simulated location (only paths under a mount). */
export function relocate(simulated: SimulatedContainer, value: string): string {
  if (!value.startsWith('/')) return value;
  try {
    return simulated.path(value);
  } catch {
    return value;
  }
}

/**
 * Argo Rollouts' argument templating: `{{args.name}}` (spaces allowed) replaced by the run's arguments, every
 * placeholder must resolve (Argo refuses to create the AnalysisRun otherwise).
 */
export function substituteArgs(text: string, args: Readonly<Record<string, string>>): string {
  return text.replace(/\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}/g, (_match, name: string) => {
    const value = args[name];
    if (value === undefined) throw new Error(`{{args.${name}}} has no value`);
    return value;
  });
}

/** How Argo resolves a `valueFrom` of an analysis argument. */
export interface ArgContext {
  readonly resources: readonly Resource[];
  readonly latestHash: string;
  readonly stableHash: string;
}

/**
 * The arguments of an AnalysisRun: the template's declared args, with the Rollout's values merged over them
 * (`value`, `podTemplateHashValue: Latest|Stable`, `secretKeyRef` in the Rollout's namespace). Throws for an
 * argument the Rollout passes that the template does not declare, or a declared one left without a value.
 */
export function analysisArgs(
  template: Json,
  rolloutArgs: readonly Json[],
  context: ArgContext,
): Record<string, string> {
  const declared = new Map<string, Json>((template.spec.args ?? []).map((arg: Json) => [arg.name, arg]));
  const resolveArg = (arg: Json): string | undefined => {
    if (arg.value !== undefined) return String(arg.value);
    const from = arg.valueFrom;
    if (from === undefined) return undefined;
    if (from.podTemplateHashValue === 'Latest') return context.latestHash;
    if (from.podTemplateHashValue === 'Stable') return context.stableHash;
    if (from.secretKeyRef !== undefined)
      return keyRef(context.resources, 'Secret', from.secretKeyRef.name, from.secretKeyRef.key);
    throw new Error(`argument ${arg.name}: valueFrom not simulated`);
  };
  const values: Record<string, string> = {};
  for (const [name, arg] of declared) {
    const value = resolveArg(arg);
    if (value !== undefined) values[name] = value;
  }
  for (const arg of rolloutArgs) {
    if (!declared.has(arg.name))
      throw new Error(`AnalysisTemplate ${template.metadata.name} declares no argument ${arg.name}`);
    const value = resolveArg(arg);
    if (value !== undefined) values[arg.name] = value;
  }
  for (const name of declared.keys()) {
    if (values[name] === undefined) throw new Error(`argument ${name} of ${template.metadata.name} has no value`);
  }
  return values;
}

/** Every place a Rollout starts an AnalysisRun, with the templates and arguments it passes. */
export function analysisReferences(rollout: Json): { where: string; templates: string[]; args: Json[] }[] {
  const references: { where: string; templates: string[]; args: Json[] }[] = [];
  const add = (where: string, spec: Json): void => {
    if (spec === undefined) return;
    references.push({
      where,
      templates: (spec.templates ?? []).map((item: Json) => item.templateName),
      args: spec.args ?? [],
    });
  };
  const canary = rollout.spec.strategy.canary;
  const blueGreen = rollout.spec.strategy.blueGreen;
  add('canary.analysis', canary?.analysis);
  for (const [index, step] of (canary?.steps ?? []).entries()) add(`canary.steps[${index}].analysis`, step.analysis);
  add('blueGreen.prePromotionAnalysis', blueGreen?.prePromotionAnalysis);
  add('blueGreen.postPromotionAnalysis', blueGreen?.postPromotionAnalysis);
  return references;
}

/**
 * Kubernetes JSONPath as Argo's web provider applies it (client-go `util/jsonpath`, first match): `{$.a.b}`,
 * `{.a.b}`, `{$['a'].b}`, `{.list[0]}`. Throws "Could not find JSONPath in body" when a key is missing, as Argo does.
 */
export function evaluateJsonPath(document: unknown, expression: string): unknown {
  const braces = /^\{(.*)\}$/.exec(expression.trim());
  if (braces === null) throw new Error(`jsonPath ${expression} is not wrapped in braces`);
  let rest = braces[1]!.trim();
  if (rest.startsWith('$')) rest = rest.slice(1);
  let value: unknown = document;
  const segment = /^(?:\.([A-Za-z_][A-Za-z0-9_-]*)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[(\d+)\])/;
  while (rest.length > 0) {
    const match = segment.exec(rest);
    if (match === null) throw new Error(`jsonPath ${expression}: cannot parse ${rest}`);
    rest = rest.slice(match[0].length);
    const key = match[1] ?? match[2] ?? match[3];
    if (key !== undefined) {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || !(key in value))
        throw new Error('Could not find JSONPath in body');
      value = (value as Record<string, unknown>)[key];
    } else {
      const index = Number(match[4]);
      if (!Array.isArray(value) || index >= value.length) throw new Error('Could not find JSONPath in body');
      value = value[index];
    }
  }
  return value;
}

/**
 * The part of expr-lang these templates use: `result == "x"` / `result != "x"` joined by `&&` / `||` (no
 * parentheses). Throws on anything else, so a condition this test cannot judge is noticed.
 */
export function evaluateCondition(expression: string, result: unknown): boolean {
  const evaluateTerm = (term: string): boolean => {
    const match = /^\s*result\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)')\s*$/.exec(term);
    if (match === null) throw new Error(`condition ${JSON.stringify(term)} is not understood by this test`);
    const literal = match[2] ?? match[3];
    return match[1] === '==' ? result === literal : result !== literal;
  };
  return expression.split('||').some((part) => part.split('&&').every(evaluateTerm));
}

/** The string literals a condition compares `result` with. */
export function conditionLiterals(expression: string): string[] {
  return [...expression.matchAll(/(?:"([^"]*)"|'([^']*)')/g)].map((match) => match[1] ?? match[2]!);
}

/**
 * What Argo makes of one web measurement (reference/gates.md §1.3, §1.4): non-2xx → Error; JSON → jsonPath → the
 * success/failure conditions' truth table.
 */
export function argoMeasurement(
  metric: Json,
  status: number,
  body: string,
): { phase: 'Successful' | 'Failed' | 'Inconclusive' | 'Error'; result: unknown } {
  if (status < 200 || status >= 300) return { phase: 'Error', result: undefined };
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return { phase: 'Error', result: undefined }; // (released Argo would call it Successful: the agent never sends one)
  }
  let result: unknown;
  try {
    result = evaluateJsonPath(document, metric.provider.web.jsonPath ?? '{$}');
  } catch {
    return { phase: 'Error', result: undefined };
  }
  const success = metric.successCondition as string | undefined;
  const failure = metric.failureCondition as string | undefined;
  if (failure !== undefined && evaluateCondition(failure, result)) return { phase: 'Failed', result };
  if (success === undefined) return { phase: 'Successful', result };
  if (evaluateCondition(success, result)) return { phase: 'Successful', result };
  return { phase: failure === undefined ? 'Failed' : 'Inconclusive', result };
}
