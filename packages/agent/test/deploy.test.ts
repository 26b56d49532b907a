// Docker is not available here, so the image is checked by structure: stages, the runtime base has no shell, a
// non-root USER, exec-form commands only in the final stage; and the sidecar manifest's security settings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const root = join(import.meta.dirname, '..');

interface Stage {
  from: string;
  name: string | undefined;
  instructions: { keyword: string; args: string }[];
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: match?.[1] ?? args, name: match?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const runtime = stages.at(-1)!;

  it('is multi-stage and the final stage copies only build output from an earlier stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const copies = runtime.instructions.filter((instruction) => instruction.keyword === 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy.args).toMatch(/--from=build\b/);
    expect(
      stages.some(
        (stage) =>
          stage.name === 'build' && stage.instructions.some((instruction) => /run build/.test(instruction.args)),
      ),
    ).toBe(true);
  });

  it('runs on a distroless base (no shell) and needs no shell: no RUN, exec-form ENTRYPOINT/CMD/HEALTHCHECK', () => {
    expect(runtime.from).toMatch(/^gcr\.io\/distroless\/nodejs\d+-debian\d+:nonroot$/);
    expect(runtime.instructions.some((instruction) => instruction.keyword === 'RUN')).toBe(false);
    for (const keyword of ['ENTRYPOINT', 'CMD']) {
      const instruction = runtime.instructions.find((item) => item.keyword === keyword)!;
      expect(() => JSON.parse(instruction.args)).not.toThrow();
    }
    const healthcheck = runtime.instructions.find((item) => item.keyword === 'HEALTHCHECK')!;
    expect(healthcheck.args).toMatch(/CMD \[/);
    expect(JSON.parse(runtime.instructions.find((item) => item.keyword === 'ENTRYPOINT')!.args)).toEqual([
      '/nodejs/bin/node',
      '--max-semi-space-size=1',
      '--lite-mode',
      '/app/node_modules/@gantry/agent/dist/cli.js',
    ]);
  });

  it('keeps host node_modules and build output out of the build context', () => {
    const ignored = readFileSync(join(root, 'Dockerfile.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist']));
  });

  it('runs as a non-root numeric user and keeps state out of the root filesystem', () => {
    const user = runtime.instructions.filter((instruction) => instruction.keyword === 'USER').at(-1)!;
    const [uid] = user.args.split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(runtime.instructions.find((item) => item.keyword === 'ENV')!.args).toContain(
      'GANTRY_AGENT_STATE_DIR=/var/lib/gantry-agent',
    );
    expect(runtime.instructions.find((item) => item.keyword === 'EXPOSE')!.args).toBe('8686');
  });
});

describe('sidecar manifest', () => {
  const documents = parseAllDocuments(readFileSync(join(root, 'deploy', 'sidecar.yaml'), 'utf8')).map((document) =>
    document.toJS(),
  );
  const deployment = documents.find((document) => document.kind === 'Deployment');
  const pod = deployment.spec.template.spec;
  const agent = pod.containers.find((container: { name: string }) => container.name === 'gantry-agent');

  it('locks the container down: read-only root, non-root, no privilege escalation, no capabilities', () => {
    expect(agent.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const writable = agent.volumeMounts.filter((mount: { readOnly?: boolean }) => mount.readOnly !== true);
    expect(writable.map((mount: { mountPath: string }) => mount.mountPath)).toEqual(['/var/lib/gantry-agent']);
  });

  it('probes /livez and /readyz on the gate port and feeds identity through the downward API', () => {
    expect(agent.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'gate' });
    expect(agent.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'gate' });
    expect(agent.ports).toEqual([{ name: 'gate', containerPort: 8686 }]);
    const podinfo = pod.volumes.find((volume: { name: string }) => volume.name === 'podinfo');
    expect(podinfo.downwardAPI.items.map((item: { path: string }) => item.path)).toEqual([
      'labels',
      'annotations',
      'name',
      'namespace',
    ]);
    expect(documents.find((document) => document.kind === 'Service').spec.clusterIP).toBe('None');
  });
});
