// Shared bits of the integration tests: unique toggle names, a recording logger and polling.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemStorageProvider, Unleash } from 'unleash-client';
import type { FlagsLogger } from '../src/index.ts';

/** A toggle name no other test (or earlier run against the same server) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A fresh folder for backup files. */
export function tempDirectory(label: string): string {
  return mkdtempSync(join(tmpdir(), `gantry-flags-${label}-`));
}

export interface RecordedLine {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly message: string | undefined;
}

/** A pino-shaped logger that keeps every line, for asserting on events. */
export function recordingLogger(): { logger: FlagsLogger; lines: RecordedLine[]; events(): unknown[] } {
  const lines: RecordedLine[] = [];
  const make = (): FlagsLogger => ({
    debug: (fields, message) => lines.push({ level: 'debug', fields, message }),
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
    child: () => make(),
  });
  return { logger: make(), lines, events: () => lines.map((line) => line.fields['event']) };
}

/**
 * Waits until a fresh SDK client is served every toggle in `names`, enabled. Unleash answers SDKs from a cache that
 * follows admin changes a moment later (and a plain HTTP request can be answered from a fresher one), so a client
 * created right after an admin call may not see the change in its first sync; this probes with a real
 * unleash-client, which gets the same answers as the client under test.
 */
export async function visibleToClients(
  unleash: { url: string; clientToken: string },
  names: readonly string[],
): Promise<void> {
  await waitFor(
    `toggles ${names.join(', ')} served to SDK clients`,
    async () => {
      const probe = new Unleash({
        url: `${unleash.url}/api`,
        appName: uniqueName('probe'),
        customHeaders: { Authorization: unleash.clientToken },
        refreshInterval: 60_000,
        disableMetrics: true,
        storageProvider: new InMemStorageProvider(),
        skipInstanceCountWarning: true,
      });
      probe.on('error', () => undefined);
      probe.on('warn', () => undefined);
      try {
        await Promise.race([once(probe, 'synchronized'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
        return names.every((name) => probe.getFeatureToggleDefinition(name)?.enabled === true);
      } finally {
        probe.destroy();
      }
    },
    30_000,
  );
}

/** Polls `probe` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
