// Manual holds and overrides with expiry, and the audit trail of every change. A hold makes gates answer
// `pending` (MANUAL_HOLD); an override lets calendar and rollback-safety checks pass for an emergency fix. Both
// expire; creation, deletion and expiry are audited (memory, an optional JSON-lines file, and a log event).
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeCrypto } from './builtins.ts';
import { AgentError } from './errors.ts';
import type { Logger } from './logger.ts';

/** `hold` stops gates; `override` lets freeze and rollback-safety checks pass. */
export type HoldKind = 'hold' | 'override';

/** A manual hold or override. */
export interface Hold {
  readonly id: string;
  readonly kind: HoldKind;
  /** Gates it applies to; absent = all gates. */
  readonly gates?: readonly string[];
  /** Tenant it applies to; absent = all tenants. */
  readonly tenant?: string;
  readonly reason: string;
  readonly actor: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

/** One audit entry. */
export interface AuditEntry {
  readonly at: string;
  readonly action: string;
  readonly actor: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** Where holds and the audit log live. */
export interface HoldStoreOptions {
  readonly now: () => number;
  readonly logger: Logger;
  /** Folder for `holds.json` and `audit.jsonl`; memory only when absent. */
  readonly stateDirectory?: string;
  /** Entries kept in memory for `GET /gate/v1/audit`. @default 1000 */
  readonly auditCapacity?: number;
  /** Called after every audited change (the agent turns it into a CloudEvent). */
  readonly onAudit?: (entry: AuditEntry) => void;
}

/** Longest hold or override allowed. */
export const MAX_HOLD_TTL_MS = 7 * 86_400_000;
/** Expiry of a hold created without one. */
export const DEFAULT_HOLD_TTL_MS = 3_600_000;

/** Holds, overrides and the audit log. */
export class HoldStore {
  readonly #options: HoldStoreOptions;
  readonly #holds = new Map<string, Hold>();
  readonly #audit: AuditEntry[] = [];
  readonly #capacity: number;
  #version = 0;

  constructor(options: HoldStoreOptions) {
    this.#options = options;
    this.#capacity = options.auditCapacity ?? 1_000;
    if (options.stateDirectory !== undefined) this.#load(options.stateDirectory);
  }

  #load(directory: string): void {
    try {
      mkdirSync(directory, { recursive: true });
    } catch (error) {
      throw new AgentError('GANTRY_AGENT_STATE', `Cannot create the state directory ${directory}`, { cause: error });
    }
    let text: string;
    try {
      text = readFileSync(join(directory, 'holds.json'), 'utf8');
    } catch {
      return;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (Array.isArray(parsed)) {
        for (const item of parsed as Hold[]) {
          if (typeof item?.id === 'string' && typeof item.expiresAt === 'string') this.#holds.set(item.id, item);
        }
      }
    } catch (error) {
      this.#options.logger.warn(
        { event: 'agent.state.unreadable', err: String(error) },
        'holds.json is not JSON; starting without holds',
      );
    }
    this.expire();
  }

  #persist(): void {
    const directory = this.#options.stateDirectory;
    if (directory === undefined) return;
    try {
      const file = join(directory, 'holds.json');
      writeFileSync(`${file}.tmp`, JSON.stringify([...this.#holds.values()], null, 2));
      renameSync(`${file}.tmp`, file);
    } catch (error) {
      this.#options.logger.error({ event: 'agent.state.write_failed', err: String(error) }, 'could not persist holds');
    }
  }

  /** Records an audit entry (memory, file, log, callback). */
  audit(action: string, actor: string, details: Record<string, unknown>): AuditEntry {
    const entry: AuditEntry = { at: new Date(this.#options.now()).toISOString(), action, actor, details };
    this.#audit.push(entry);
    if (this.#audit.length > this.#capacity) this.#audit.splice(0, this.#audit.length - this.#capacity);
    this.#options.logger.info({ event: `agent.audit.${action}`, actor, ...details }, `audit: ${action}`);
    const directory = this.#options.stateDirectory;
    if (directory !== undefined) {
      try {
        appendFileSync(join(directory, 'audit.jsonl'), `${JSON.stringify(entry)}\n`);
      } catch (error) {
        this.#options.logger.error(
          { event: 'agent.state.write_failed', err: String(error) },
          'could not append to audit.jsonl',
        );
      }
    }
    this.#options.onAudit?.(entry);
    return entry;
  }

  /** Adds a hold; the caller has validated the fields. */
  create(input: Omit<Hold, 'id' | 'createdAt'>): Hold {
    const hold: Hold = {
      id: nodeCrypto().randomUUID(),
      createdAt: new Date(this.#options.now()).toISOString(),
      ...input,
    };
    this.#holds.set(hold.id, hold);
    this.#version += 1;
    this.#persist();
    this.audit(`${hold.kind}.created`, hold.actor, { hold });
    return hold;
  }

  /** Removes a hold; `undefined` when there is none with that id. */
  delete(id: string, actor: string): Hold | undefined {
    const hold = this.#holds.get(id);
    if (hold === undefined) return undefined;
    this.#holds.delete(id);
    this.#version += 1;
    this.#persist();
    this.audit(`${hold.kind}.deleted`, actor, { hold });
    return hold;
  }

  /** Drops expired holds (audited as `hold.expired`). */
  expire(): void {
    const now = this.#options.now();
    let changed = false;
    for (const hold of [...this.#holds.values()]) {
      if (Date.parse(hold.expiresAt) <= now) {
        this.#holds.delete(hold.id);
        this.#version += 1;
        changed = true;
        this.audit(`${hold.kind}.expired`, 'gantry-agent', { hold });
      }
    }
    if (changed) this.#persist();
  }

  /** Increases with every change (cached verdicts depend on it). */
  get version(): number {
    return this.#version;
  }

  /** Live holds, oldest first. */
  list(): Hold[] {
    const now = this.#options.now();
    return [...this.#holds.values()].filter((hold) => Date.parse(hold.expiresAt) > now);
  }

  /** Live holds of a kind that apply to a gate and tenant. */
  matching(kind: HoldKind, gate: string, tenant: string | undefined): Hold[] {
    return this.list().filter(
      (hold) =>
        hold.kind === kind &&
        (hold.gates === undefined || hold.gates.length === 0 || hold.gates.includes(gate)) &&
        (hold.tenant === undefined || hold.tenant === tenant),
    );
  }

  /** The audit entries in memory, oldest first. */
  auditEntries(): readonly AuditEntry[] {
    return this.#audit;
  }
}
