import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDownwardApiFile, podIdentityFromEnvironment } from './identity.ts';

describe('pod identity', () => {
  it('parses downward API label files with escapes', () => {
    expect(parseDownwardApiFile('app="orders"\npod-template-hash="6f9989bdd5"\nnote="a \\"b\\""\n')).toEqual({
      app: 'orders',
      'pod-template-hash': '6f9989bdd5',
      note: 'a "b"',
    });
  });

  it("prefers Argo's rollouts-pod-template-hash, and environment variables over files", () => {
    const directory = mkdtempSync(join(tmpdir(), 'podinfo-'));
    writeFileSync(
      join(directory, 'labels'),
      'pod-template-hash="aaa"\nrollouts-pod-template-hash="bbb"\napp.kubernetes.io/version="1.2.3"\n',
    );
    writeFileSync(join(directory, 'name'), 'orders-bbb-1\n');
    expect(podIdentityFromEnvironment({}, directory)).toEqual({
      pod: 'orders-bbb-1',
      podTemplateHash: 'bbb',
      version: '1.2.3',
    });
    expect(podIdentityFromEnvironment({ GANTRY_AGENT_VERSION: '9.9.9' }, directory).version).toBe('9.9.9');
    expect(podIdentityFromEnvironment({}, join(directory, 'missing'))).toEqual({});
  });
});
