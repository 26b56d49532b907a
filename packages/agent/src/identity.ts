// Who this pod is: from environment variables or the Kubernetes downward API files
// (https://kubernetes.io/docs/concepts/workloads/pods/downward-api/): `labels`, `annotations`, `name`,
// `namespace` under a mounted folder. The pod-template hash comes from Argo's `rollouts-pod-template-hash` label or
// the Deployment's `pod-template-hash`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Identity of the pod the agent sits in. Every field is optional: outside Kubernetes most are unknown. */
export interface PodIdentity {
  readonly pod?: string;
  readonly namespace?: string;
  readonly podTemplateHash?: string;
  readonly version?: string;
  readonly imageDigest?: string;
  readonly service?: string;
}

/** Default mount folder of the downward API volume in the sidecar manifest. */
export const DEFAULT_PODINFO_DIRECTORY = '/etc/podinfo';

/**
 * Parses a downward API `labels`/`annotations` file: `key="value"` lines with Go string escapes.
 * @example parseDownwardApiFile('app="orders"\n') // { app: 'orders' }
 */
export function parseDownwardApiFile(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    const key = line.slice(0, equals).trim();
    let value = line.slice(equals + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        value = value.slice(1, -1);
      }
    }
    result[key] = value;
  }
  return result;
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function defined(value: Record<string, string | undefined>): PodIdentity {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined && item !== ''));
}

/**
 * Resolves the pod identity: `GANTRY_AGENT_POD_NAME`, `GANTRY_AGENT_POD_NAMESPACE`,
 * `GANTRY_AGENT_POD_TEMPLATE_HASH`, `GANTRY_AGENT_VERSION`, `GANTRY_AGENT_IMAGE_DIGEST`, `GANTRY_AGENT_SERVICE`
 * win over the downward API files in `GANTRY_AGENT_PODINFO_DIR` (default `/etc/podinfo`).
 * @example const identity = podIdentityFromEnvironment(process.env);
 */
export function podIdentityFromEnvironment(
  env: Readonly<Record<string, string | undefined>> = process.env,
  directory: string = env['GANTRY_AGENT_PODINFO_DIR'] ?? DEFAULT_PODINFO_DIRECTORY,
): PodIdentity {
  const labelsText = readOptional(join(directory, 'labels'));
  const annotationsText = readOptional(join(directory, 'annotations'));
  const labels = labelsText === undefined ? {} : parseDownwardApiFile(labelsText);
  const annotations = annotationsText === undefined ? {} : parseDownwardApiFile(annotationsText);
  const fromFiles = defined({
    pod: readOptional(join(directory, 'name')),
    namespace: readOptional(join(directory, 'namespace')),
    podTemplateHash: labels['rollouts-pod-template-hash'] ?? labels['pod-template-hash'],
    version: labels['app.kubernetes.io/version'] ?? labels['version'],
    service: labels['app.kubernetes.io/name'] ?? labels['app'],
    imageDigest: annotations['gantry.dev/image-digest'],
  });
  const fromEnv = defined({
    pod: env['GANTRY_AGENT_POD_NAME'],
    namespace: env['GANTRY_AGENT_POD_NAMESPACE'],
    podTemplateHash: env['GANTRY_AGENT_POD_TEMPLATE_HASH'],
    version: env['GANTRY_AGENT_VERSION'],
    imageDigest: env['GANTRY_AGENT_IMAGE_DIGEST'],
    service: env['GANTRY_AGENT_SERVICE'],
  });
  return { ...fromFiles, ...fromEnv };
}
