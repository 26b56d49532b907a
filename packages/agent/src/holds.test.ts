import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HoldStore } from './holds.ts';
import { SILENT_LOGGER } from './logger.ts';

describe('holds', () => {
  it('expires holds on the injected clock, audits every change and survives a restart', () => {
    const directory = mkdtempSync(join(tmpdir(), 'holds-'));
    let now = Date.parse('2026-05-01T10:00:00Z');
    const store = new HoldStore({ now: () => now, logger: SILENT_LOGGER, stateDirectory: directory });
    store.create({
      kind: 'hold',
      reason: 'incident',
      actor: 'alice',
      expiresAt: '2026-05-01T11:00:00.000Z',
      gates: ['promotion'],
    });
    expect(store.matching('hold', 'promotion', undefined)).toHaveLength(1);
    expect(store.matching('hold', 'slo', undefined)).toHaveLength(0);
    const reloaded = new HoldStore({ now: () => now, logger: SILENT_LOGGER, stateDirectory: directory });
    expect(reloaded.list()).toHaveLength(1);
    now += 3_600_000;
    reloaded.expire();
    expect(reloaded.list()).toHaveLength(0);
    const audit = readFileSync(join(directory, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).action);
    expect(audit).toEqual(['hold.created', 'hold.expired']);
  });
});
