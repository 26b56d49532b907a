import { randomBytes } from 'node:crypto';
import { readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientFeaturesResponse } from 'unleash-client';
import { FlagsError } from './errors.ts';
import { errorMessage, type FlagsLogger } from './logger.ts';

/** Where the values in memory came from before (or without) a sync with Unleash. */
export type SnapshotOrigin = 'backup' | 'bootstrap';

/** Feature data to start from: the body of Unleash's `/api/client/features`, or just its `features` array. */
export type BootstrapData = ClientFeaturesResponse | ClientFeaturesResponse['features'];

export interface SnapshotStoreOptions {
  readonly appName: string;
  /** Folder of the backup file; undefined keeps the last values in memory only. */
  readonly backupDirectory: string | undefined;
  readonly bootstrapPath: string | undefined;
  readonly bootstrapData: BootstrapData | undefined;
  /** Take the bootstrap even when a backup exists. */
  readonly preferBootstrap: boolean;
  readonly logger: FlagsLogger;
  /** Told which snapshot was handed to unleash-client, and when it was written. */
  readonly onLoad: (origin: SnapshotOrigin, savedAt: Date | undefined) => void;
}

/**
 * unleash-client's storage provider, replaced: the backup file is written atomically (temp file + rename, so a
 * crash never leaves half a JSON), the folder is checked writable before use (in memory otherwise, warned once),
 * and the bootstrap is served through the same `get` so we always know where the first values came from.
 */
export class SnapshotStore {
  readonly #options: SnapshotStoreOptions;
  #directory: string | undefined;
  #writeFailed = false;

  constructor(options: SnapshotStoreOptions) {
    this.#options = options;
    this.#directory = options.backupDirectory;
  }

  /** The backup file, or undefined when values are kept in memory only. */
  get backupFile(): string | undefined {
    return this.#directory === undefined ? undefined : this.#file(this.#directory);
  }

  /** Probes the backup folder with a real write; falls back to memory when that fails. */
  async prepare(): Promise<void> {
    const directory = this.#directory;
    if (directory === undefined) return;
    const probe = join(directory, `.gantry-flags-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await writeFile(probe, '');
      await unlink(probe);
    } catch (error) {
      this.#directory = undefined;
      this.#options.logger.warn(
        { event: 'flags.backup.unwritable', backupPath: directory, error: errorMessage(error) },
        'flag backup folder is not writable; keeping the last values in memory only',
      );
    }
  }

  async get(_key: string): Promise<ClientFeaturesResponse | undefined> {
    const { preferBootstrap } = this.#options;
    const backup = preferBootstrap ? undefined : await this.#readBackup();
    if (backup !== undefined) {
      this.#options.onLoad('backup', backup.savedAt);
      return backup.data;
    }
    const bootstrap = await this.#readBootstrap();
    if (bootstrap !== undefined) {
      this.#options.onLoad('bootstrap', bootstrap.savedAt);
      return bootstrap.data;
    }
    if (preferBootstrap) {
      const fallback = await this.#readBackup();
      if (fallback !== undefined) {
        this.#options.onLoad('backup', fallback.savedAt);
        return fallback.data;
      }
    }
    return undefined;
  }

  async set(_key: string, data: ClientFeaturesResponse): Promise<void> {
    const directory = this.#directory;
    if (directory === undefined) return;
    const file = this.#file(directory);
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify(data));
      await rename(temporary, file);
      this.#writeFailed = false;
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      if (!this.#writeFailed) {
        this.#writeFailed = true;
        this.#options.logger.warn(
          { event: 'flags.backup.write_failed', backupFile: file, error: errorMessage(error) },
          'could not write the flag backup file; the values stay in memory',
        );
      }
    }
  }

  #file(directory: string): string {
    const safe = this.#options.appName.replace(/[^A-Za-z0-9._-]/g, '_');
    return join(directory, `gantry-flags-${safe}.json`);
  }

  async #readBackup(): Promise<{ data: ClientFeaturesResponse; savedAt: Date | undefined } | undefined> {
    const file = this.backupFile;
    if (file === undefined) return undefined;
    try {
      const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      const data = parseSnapshot(text, file);
      return data.features.length === 0 ? undefined : { data, savedAt: info.mtime };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#options.logger.warn(
          { event: 'flags.backup.unreadable', backupFile: file, error: errorMessage(error) },
          'ignoring an unreadable flag backup file',
        );
      }
      return undefined;
    }
  }

  async #readBootstrap(): Promise<{ data: ClientFeaturesResponse; savedAt: Date | undefined } | undefined> {
    const { bootstrapData, bootstrapPath, logger } = this.#options;
    try {
      if (bootstrapData !== undefined)
        return { data: normalizeSnapshot(bootstrapData, 'bootstrap'), savedAt: undefined };
      if (bootstrapPath === undefined) return undefined;
      const [text, info] = await Promise.all([readFile(bootstrapPath, 'utf8'), stat(bootstrapPath)]);
      return { data: parseSnapshot(text, bootstrapPath), savedAt: info.mtime };
    } catch (error) {
      logger.error(
        {
          event: 'flags.bootstrap.failed',
          code: 'GANTRY_FLAGS_BOOTSTRAP_INVALID',
          bootstrapPath,
          error: errorMessage(error),
        },
        'could not load the flag bootstrap; flags use their defaults until Unleash answers',
      );
      return undefined;
    }
  }
}

function parseSnapshot(text: string, where: string): ClientFeaturesResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FlagsError('GANTRY_FLAGS_BOOTSTRAP_INVALID', `${where} is not valid JSON`, { cause: error });
  }
  return normalizeSnapshot(parsed, where);
}

/**
 * Accepts Unleash's client features document or a bare array of features.
 * @throws FlagsError `GANTRY_FLAGS_BOOTSTRAP_INVALID` when neither shape is found.
 */
export function normalizeSnapshot(value: unknown, where: string): ClientFeaturesResponse {
  const features = Array.isArray(value) ? value : (value as { features?: unknown } | null)?.features;
  if (!Array.isArray(features)) {
    throw new FlagsError(
      'GANTRY_FLAGS_BOOTSTRAP_INVALID',
      `Expected ${where} to hold Unleash's client features document ({ "features": [...] }) or an array of features`,
    );
  }
  for (const feature of features as unknown[]) {
    const candidate = feature as { name?: unknown; enabled?: unknown } | null;
    if (typeof candidate?.name !== 'string' || typeof candidate.enabled !== 'boolean') {
      throw new FlagsError(
        'GANTRY_FLAGS_BOOTSTRAP_INVALID',
        `Expected every feature in ${where} to have a string "name" and a boolean "enabled"`,
      );
    }
  }
  const segments = Array.isArray(value) ? undefined : (value as { segments?: unknown }).segments;
  return {
    version: 2,
    features: features as ClientFeaturesResponse['features'],
    ...(Array.isArray(segments) && { segments: segments as NonNullable<ClientFeaturesResponse['segments']> }),
  };
}
