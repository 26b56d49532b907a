// A Vault-compatible dev server for tests (reference/vault.md §1.11): loopback HTTP, an injectable clock, tokens
// with TTL / max TTL and renewal, AppRole and Kubernetes logins, leases with Vault's renewal and capping rules,
// KV v2, a database secrets engine whose hooks can create real PostgreSQL roles, an expiration manager that revokes
// expired tokens and their leases on its own, and fault injection.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SYSTEM_CLOCK, type Clock, type ClockTimer } from './clock.ts';
import { invalidOption } from './errors.ts';
import { requiredString } from './validate.ts';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const SYSTEM_MAX_TTL_SECONDS = 768 * 3600;
/** Vault sets the database-side expiry this much after the lease expiry. */
export const DATABASE_EXPIRY_BUFFER_MS = 5_000;

function base62(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (let index = 0; out.length < length; index += 1) {
    const byte = bytes[index % bytes.length]!;
    if (byte < 248) out += BASE62[byte % 62];
  }
  return out;
}

/** Go-style duration as current Vault prints it: zero parts left out ("1h", "30m", "1m9s"). */
export function humanDuration(seconds: number): string {
  let rest = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  rest -= minutes * 60;
  const text = `${hours > 0 ? `${hours}h` : ''}${minutes > 0 ? `${minutes}m` : ''}${rest > 0 ? `${rest}s` : ''}`;
  return text === '' ? '0s' : text;
}

/** Parses Vault's TypeDurationSecond: an integer, a numeric string or a duration string ("1h30m", "90s"). */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (match === null || value === '') return undefined;
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0);
}

/** Vault's expiration format for `{{expiration}}`: Go layout `2006-01-02 15:04:05-0700`, in UTC. */
export function vaultExpiration(epochMs: number): string {
  return `${new Date(Math.floor(epochMs / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ')}+0000`;
}

/** A database role of the dev server's database secrets engine. */
export interface DevDatabaseRole {
  /** @default 3600 */
  readonly defaultTtlSeconds?: number;
  /** @default 86400 */
  readonly maxTtlSeconds?: number;
  /** SQL run by {@link postgresRoleHooks} with `{{name}}`, `{{password}}`, `{{expiration}}`. */
  readonly creationStatements?: readonly string[];
  readonly renewStatements?: readonly string[];
  /** Empty means Vault's default revocation (REVOKE …, REVOKE CONNECT, DROP ROLE). */
  readonly revocationStatements?: readonly string[];
}

/** A user the database engine manages, as handed to the hooks. `password` only reaches `onCreate`. */
export interface DevDatabaseUser {
  readonly role: string;
  readonly roleConfig: DevDatabaseRole;
  readonly username: string;
  /** Database-side expiry: lease expiry + 5 s, like Vault. */
  readonly expiresAt: number;
}

/** What happens in the database when the engine creates, renews and revokes users. */
export interface DevDatabaseHooks {
  onCreate?(user: DevDatabaseUser, password: string): Promise<void> | void;
  onRenew?(user: DevDatabaseUser): Promise<void> | void;
  onRevoke?(user: DevDatabaseUser): Promise<void> | void;
}

/** A fault the server injects into matching requests. */
export type DevFaultKind =
  'sealed' | 'rate-limit' | 'internal-error' | 'precondition-failed' | 'latency' | 'hang' | 'reset' | 'standby';

/** Which requests a fault hits and how. */
export interface DevFault {
  readonly kind: DevFaultKind;
  /** Request path without `/v1/`: a prefix string or a RegExp. @default every path */
  readonly path?: string | RegExp;
  /** HTTP method (PUT and POST count as the same). @default every method */
  readonly method?: string;
  /** How many requests it hits before it is used up. @default Infinity */
  readonly times?: number;
  /** For `rate-limit`. @default 1 */
  readonly retryAfterSeconds?: number;
  /** For `latency`: a fixed delay or a `[min, max]` range. @default 100 */
  readonly delayMs?: number | readonly [number, number];
  /** For `internal-error`. @default 'internal error' */
  readonly message?: string;
}

/** Handle of an injected fault. */
export interface DevFaultHandle {
  /** Requests it has hit so far. */
  readonly hits: number;
  clear(): void;
}

/** One request as the server saw it; tokens and secret fields are redacted. */
export interface DevRequest {
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly namespace: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly status: number;
}

/** State of one lease, for assertions. */
export interface DevLeaseState {
  readonly leaseId: string;
  readonly path: string;
  readonly username: string | undefined;
  readonly issueTime: number;
  readonly expireTime: number;
  readonly renewable: boolean;
  readonly revoked: boolean;
  readonly revokedAt: number | undefined;
  readonly tokenAccessor: string | undefined;
}

/** State of one token, for assertions. */
export interface DevTokenState {
  readonly accessor: string;
  readonly expireTime: number | null;
  readonly maxExpireTime: number | null;
  readonly renewable: boolean;
  readonly revoked: boolean;
}

/** Options of {@link createVaultDevServer}. */
export interface VaultDevServerOptions {
  /** @default the system clock */
  readonly clock?: Clock;
  /** @default 'root' */
  readonly rootToken?: string;
  /** @default 'database' */
  readonly databaseMount?: string;
  /** @default 'secret' */
  readonly kvMount?: string;
  /** @default 'approle' */
  readonly approleMount?: string;
  /** @default 'kubernetes' */
  readonly kubernetesMount?: string;
  /** Database side effects, e.g. {@link postgresRoleHooks}. */
  readonly database?: DevDatabaseHooks;
  /** Password generator for database users. @default Vault's default policy shape (20 characters) */
  readonly generatePassword?: () => string;
  /** @default 0 (a free port) */
  readonly port?: number;
}

/** A login role for AppRole or Kubernetes auth. */
export interface DevAuthRole {
  /** @default 3600 */
  readonly tokenTtlSeconds?: number;
  /** @default 86400 */
  readonly tokenMaxTtlSeconds?: number;
  /** @default true */
  readonly renewable?: boolean;
  /** @default ['default'] */
  readonly policies?: readonly string[];
}

/** A running dev server; see {@link createVaultDevServer}. */
export interface VaultDevServer {
  /** `http://127.0.0.1:<port>` */
  readonly address: string;
  readonly port: number;
  readonly rootToken: string;
  readonly clock: Clock;
  /** Every request so far, oldest first. */
  readonly requests: readonly DevRequest[];
  addDatabaseRole(name: string, role?: DevDatabaseRole): void;
  /** Registers an AppRole role; returns the `roleId` and `secretId` to log in with. */
  addAppRole(
    name: string,
    role?: DevAuthRole & { readonly roleId?: string; readonly secretId?: string },
  ): {
    readonly roleId: string;
    readonly secretId: string;
  };
  /** Registers a Kubernetes role that accepts the given service-account JWTs. */
  addKubernetesRole(name: string, role: DevAuthRole & { readonly jwts: readonly string[] }): void;
  /** Issues a token directly (like `vault token create`). */
  createToken(options?: DevAuthRole & { readonly id?: string }): { readonly token: string; readonly accessor: string };
  /** Revokes a token by accessor or by ID, and every lease it created. */
  revokeToken(tokenOrAccessor: string): Promise<void>;
  /** Makes every non-root token get a policy denial on paths starting with `prefix`. */
  deny(prefix: string): void;
  kvPut(path: string, data: Readonly<Record<string, unknown>>): number;
  inject(fault: DevFault): DevFaultHandle;
  clearFaults(): void;
  seal(): void;
  unseal(): Promise<void>;
  /** Stops listening (clients see ECONNREFUSED); with `keepExpiring: false` the expiration manager pauses too. */
  refuse(options?: { readonly keepExpiring?: boolean }): Promise<void>;
  /** Listens again on the same port. */
  accept(): Promise<void>;
  /** Runs the expiration manager now and waits for pending revocations (useful after moving a manual clock). */
  settle(): Promise<void>;
  /**
   * Moves the server's manual clock by `ms` (firing expirations on the way) and settles.
   * @throws Error when the server runs on a clock without `advance` (the system clock)
   */
  advance(ms: number): Promise<void>;
  leaseState(leaseId: string): DevLeaseState | undefined;
  leases(): readonly DevLeaseState[];
  tokenState(tokenOrAccessor: string): DevTokenState | undefined;
  close(): Promise<void>;
}

interface TokenEntry {
  readonly id: string;
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly ttlMs: number; // 0 = never expires
  readonly maxTtlMs: number;
  readonly issueTime: number;
  readonly displayName: string;
  readonly path: string;
  readonly meta: Readonly<Record<string, string>>;
  expireTime: number | null;
  renewable: boolean;
  revoked: boolean;
}

interface LeaseEntry {
  readonly id: string;
  readonly path: string;
  readonly role: string;
  readonly tokenId: string;
  readonly issueTime: number;
  readonly username: string;
  expireTime: number;
  lastRenewal: number | null;
  renewable: boolean;
  revoked: boolean;
  revokedAt: number | undefined;
}

interface KvVersion {
  readonly data: Record<string, unknown>;
  readonly createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

class HttpError extends Error {
  readonly status: number;
  readonly errors: readonly string[];
  constructor(status: number, errors: readonly string[]) {
    super(errors[0] ?? `status ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

const multiError = (...messages: string[]): string =>
  `${messages.length} error${messages.length === 1 ? '' : 's'} occurred:\n${messages.map((message) => `\t* ${message}`).join('\n')}\n\n`;
const INVALID_TOKEN = multiError('permission denied', 'invalid token');
const POLICY_DENIED = multiError('permission denied');
const SECRET_FIELDS = /^(secret_id|jwt|password|token|client_token)$/i;

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, SECRET_FIELDS.test(key) ? '[redacted]' : redact(item)]),
  );
}

function defaultPassword(): string {
  return `A1a-${base62(16)}`;
}

function matchesFault(fault: DevFault, method: string, path: string): boolean {
  const same = (a: string, b: string): boolean =>
    a.toUpperCase() === b.toUpperCase() || (/^(PUT|POST)$/i.test(a) && /^(PUT|POST)$/i.test(b));
  if (fault.method !== undefined && !same(fault.method, method)) return false;
  if (fault.path === undefined) return true;
  return typeof fault.path === 'string' ? path.startsWith(fault.path.replace(/^\/+/, '')) : fault.path.test(path);
}

class DevServer implements VaultDevServer {
  readonly rootToken: string;
  readonly clock: Clock;
  readonly requests: DevRequest[] = [];
  readonly #options: VaultDevServerOptions;
  readonly #mounts: { database: string; kv: string; approle: string; kubernetes: string };
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #leases = new Map<string, LeaseEntry>();
  readonly #dbRoles = new Map<string, DevDatabaseRole>();
  readonly #appRoles = new Map<string, DevAuthRole & { roleId: string; secretId: string }>();
  readonly #k8sRoles = new Map<string, DevAuthRole & { jwts: readonly string[] }>();
  readonly #kv = new Map<string, KvVersion[]>();
  readonly #denied: string[] = [];
  readonly #faults: { fault: DevFault; hits: number; remaining: number }[] = [];
  readonly #namespaces = new Map<string, string>();
  readonly #sockets = new Set<Socket>();
  readonly #pendingRevocations = new Set<Promise<void>>();
  readonly #server: Server;
  #port = 0;
  #sealed = false;
  #expiryPaused = false;
  #expiryTimer: ClockTimer | undefined;
  #closed = false;

  constructor(options: VaultDevServerOptions) {
    this.#options = options;
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.rootToken = options.rootToken ?? 'root';
    this.#mounts = {
      database: options.databaseMount ?? 'database',
      kv: options.kvMount ?? 'secret',
      approle: options.approleMount ?? 'approle',
      kubernetes: options.kubernetesMount ?? 'kubernetes',
    };
    this.#tokens.set(this.rootToken, {
      id: this.rootToken,
      accessor: randomUUID(),
      policies: ['root'],
      ttlMs: 0,
      maxTtlMs: 0,
      issueTime: this.clock.now(),
      displayName: 'root',
      path: 'auth/token/root',
      meta: {},
      expireTime: null,
      renewable: false,
      revoked: false,
    });
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.#send(res, { status: 500, body: { errors: [multiError(String(error))] } });
      });
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  get address(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    if (address !== null && typeof address === 'object') this.#port = address.port;
  }

  // ── configuration ─────────────────────────────────────────────────────────────────────────────────────

  addDatabaseRole(name: string, role: DevDatabaseRole = {}): void {
    this.#dbRoles.set(requiredString('name', name), role);
  }

  addAppRole(name: string, role: DevAuthRole & { readonly roleId?: string; readonly secretId?: string } = {}) {
    const entry = { ...role, roleId: role.roleId ?? randomUUID(), secretId: role.secretId ?? randomUUID() };
    this.#appRoles.set(requiredString('name', name), entry);
    return { roleId: entry.roleId, secretId: entry.secretId };
  }

  addKubernetesRole(name: string, role: DevAuthRole & { readonly jwts: readonly string[] }): void {
    this.#k8sRoles.set(requiredString('name', name), role);
  }

  createToken(options: DevAuthRole & { readonly id?: string } = {}) {
    const token = this.#issueToken(options, 'token', 'auth/token/create', {}, options.id);
    return { token: token.id, accessor: token.accessor };
  }

  async revokeToken(tokenOrAccessor: string): Promise<void> {
    const token = this.#findToken(tokenOrAccessor);
    if (token !== undefined) this.#revokeTokenEntry(token);
    await this.#drainRevocations();
  }

  deny(prefix: string): void {
    this.#denied.push(prefix.replace(/^\/+/, ''));
  }

  kvPut(path: string, data: Readonly<Record<string, unknown>>): number {
    const key = path.replace(/^\/+|\/+$/g, '');
    const versions = this.#kv.get(key) ?? [];
    versions.push({
      data: structuredClone(data),
      createdTime: new Date(this.clock.now()).toISOString(),
      deletionTime: '',
      destroyed: false,
    });
    this.#kv.set(key, versions);
    return versions.length;
  }

  inject(fault: DevFault): DevFaultHandle {
    const entry = { fault, hits: 0, remaining: fault.times ?? Number.POSITIVE_INFINITY };
    this.#faults.push(entry);
    return {
      get hits() {
        return entry.hits;
      },
      clear: () => {
        const index = this.#faults.indexOf(entry);
        if (index >= 0) this.#faults.splice(index, 1);
      },
    };
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  seal(): void {
    this.#sealed = true;
  }

  async unseal(): Promise<void> {
    this.#sealed = false;
    await this.settle();
  }

  async refuse(options: { readonly keepExpiring?: boolean } = {}): Promise<void> {
    this.#expiryPaused = options.keepExpiring !== true;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
  }

  async accept(): Promise<void> {
    if (this.#server.listening) return;
    await this.listen(this.#port);
    this.#expiryPaused = false;
    await this.settle();
  }

  async settle(): Promise<void> {
    this.#runExpirations();
    await this.#drainRevocations();
  }

  async advance(ms: number): Promise<void> {
    const clock = this.clock as Clock & { advance?: (ms: number) => Promise<void> };
    if (typeof clock.advance !== 'function') {
      throw new Error('advance() needs a manual clock: createVaultDevServer({ clock: createManualClock() })');
    }
    await clock.advance(ms);
    await this.settle();
  }

  leaseState(leaseId: string): DevLeaseState | undefined {
    const lease = this.#leases.get(leaseId);
    return lease === undefined ? undefined : this.#leaseView(lease);
  }

  leases(): readonly DevLeaseState[] {
    return [...this.#leases.values()].map((lease) => this.#leaseView(lease));
  }

  tokenState(tokenOrAccessor: string): DevTokenState | undefined {
    const token = this.#findToken(tokenOrAccessor);
    if (token === undefined) return undefined;
    return {
      accessor: token.accessor,
      expireTime: token.expireTime,
      maxExpireTime: token.maxTtlMs > 0 ? token.issueTime + token.maxTtlMs : null,
      renewable: token.renewable,
      revoked: token.revoked,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#expiryTimer !== undefined) this.clock.clearTimeout(this.#expiryTimer);
    await new Promise<void>((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
    await this.#drainRevocations();
  }

  // ── tokens, leases, expiration ────────────────────────────────────────────────────────────────────────

  #leaseView(lease: LeaseEntry): DevLeaseState {
    return {
      leaseId: lease.id,
      path: lease.path,
      username: lease.username,
      issueTime: lease.issueTime,
      expireTime: lease.expireTime,
      renewable: lease.renewable,
      revoked: lease.revoked,
      revokedAt: lease.revokedAt,
      tokenAccessor: this.#tokens.get(lease.tokenId)?.accessor,
    };
  }

  #findToken(tokenOrAccessor: string): TokenEntry | undefined {
    return (
      this.#tokens.get(tokenOrAccessor) ??
      [...this.#tokens.values()].find((token) => token.accessor === tokenOrAccessor)
    );
  }

  #issueToken(
    role: DevAuthRole,
    displayName: string,
    path: string,
    meta: Record<string, string>,
    id?: string,
  ): TokenEntry {
    const now = this.clock.now();
    const ttlMs = (role.tokenTtlSeconds ?? 3600) * 1000;
    const maxTtlMs = Math.min(role.tokenMaxTtlSeconds ?? 86_400, SYSTEM_MAX_TTL_SECONDS) * 1000;
    const token: TokenEntry = {
      id: id ?? `hvs.${base62(24)}`,
      accessor: base62(24),
      policies: ['default', ...(role.policies ?? []).filter((policy) => policy !== 'default')],
      ttlMs,
      maxTtlMs,
      issueTime: now,
      displayName,
      path,
      meta,
      expireTime: now + Math.min(ttlMs, maxTtlMs),
      renewable: role.renewable ?? true,
      revoked: false,
    };
    this.#tokens.set(token.id, token);
    this.#armExpiry();
    return token;
  }

  #revokeTokenEntry(token: TokenEntry): void {
    if (token.revoked) return;
    token.revoked = true;
    for (const lease of this.#leases.values()) {
      if (lease.tokenId === token.id && !lease.revoked) void this.#revokeLeaseEntry(lease).catch(() => undefined);
    }
  }

  #revokeLeaseEntry(lease: LeaseEntry): Promise<void> {
    lease.revoked = true;
    lease.revokedAt = this.clock.now();
    const database = this.#options.database;
    const role = this.#dbRoles.get(lease.role) ?? {};
    if (database?.onRevoke === undefined) return Promise.resolve();
    const task = (async () => {
      await database.onRevoke?.({
        role: lease.role,
        roleConfig: role,
        username: lease.username,
        expiresAt: lease.expireTime,
      });
    })();
    const tracked = task.catch(() => undefined).finally(() => this.#pendingRevocations.delete(tracked));
    this.#pendingRevocations.add(tracked);
    return task;
  }

  async #drainRevocations(): Promise<void> {
    while (this.#pendingRevocations.size > 0) await Promise.all([...this.#pendingRevocations]);
  }

  /** Revokes expired tokens (and their leases) and expired leases, unless sealed or paused. */
  #runExpirations(): void {
    if (this.#sealed || this.#expiryPaused || this.#closed) return;
    const now = this.clock.now();
    for (const token of this.#tokens.values()) {
      if (!token.revoked && token.expireTime !== null && token.expireTime <= now) this.#revokeTokenEntry(token);
    }
    for (const lease of this.#leases.values()) {
      if (!lease.revoked && lease.expireTime <= now) void this.#revokeLeaseEntry(lease).catch(() => undefined);
    }
    this.#armExpiry();
  }

  #armExpiry(): void {
    if (this.#expiryTimer !== undefined) this.clock.clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.#closed) return;
    let next = Number.POSITIVE_INFINITY;
    for (const token of this.#tokens.values()) {
      if (!token.revoked && token.expireTime !== null) next = Math.min(next, token.expireTime);
    }
    for (const lease of this.#leases.values()) if (!lease.revoked) next = Math.min(next, lease.expireTime);
    if (next === Number.POSITIVE_INFINITY) return;
    this.#expiryTimer = this.clock.setTimeout(
      () => {
        this.#expiryTimer = undefined;
        this.#runExpirations();
      },
      Math.max(0, next - this.clock.now()),
    );
  }

  /** Vault's CalculateTTL: `increment` counts from now and is capped at issue time + max TTL. */
  #calculateTtl(
    incrementS: number,
    defaultMs: number,
    maxMs: number,
    issueTime: number,
  ): { ttlMs: number; warning?: string } {
    const now = this.clock.now();
    const wanted = incrementS > 0 ? incrementS * 1000 : defaultMs;
    const maxValid = issueTime + maxMs - now;
    if (maxValid <= 0) throw new HttpError(400, ['past the max TTL, cannot renew']);
    if (wanted > maxValid) {
      return {
        ttlMs: maxValid,
        warning: `TTL of "${humanDuration(wanted / 1000)}" exceeded the effective max_ttl of "${humanDuration(maxValid / 1000)}"; TTL value is capped accordingly`,
      };
    }
    return { ttlMs: wanted };
  }

  // ── HTTP ──────────────────────────────────────────────────────────────────────────────────────────────

  #send(res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string> = { 'cache-control': 'no-store', ...reply.headers };
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers);
      res.end();
      return;
    }
    headers['content-type'] = 'application/json';
    res.writeHead(reply.status, headers);
    res.end(`${JSON.stringify(reply.body)}\n`);
  }

  #envelope(fields: {
    leaseId?: string;
    renewable?: boolean;
    leaseDuration?: number;
    data?: unknown;
    warnings?: readonly string[];
    auth?: unknown;
    mountType?: string;
  }): Reply {
    return {
      status: 200,
      body: {
        request_id: randomUUID(),
        lease_id: fields.leaseId ?? '',
        renewable: fields.renewable ?? false,
        lease_duration: fields.leaseDuration ?? 0,
        data: fields.data ?? null,
        wrap_info: null,
        warnings: fields.warnings === undefined || fields.warnings.length === 0 ? null : fields.warnings,
        auth: fields.auth ?? null,
        mount_type: fields.mountType ?? '',
      },
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname.replace(/^\/v1\//, '').replace(/\/+$/, '');
    const raw = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', () => resolve(''));
    });
    const namespace =
      typeof req.headers['x-vault-namespace'] === 'string' ? req.headers['x-vault-namespace'] : undefined;
    let body: Record<string, unknown> | null = null;
    let parseError = false;
    if (raw.trim() !== '') {
      try {
        const parsed = JSON.parse(raw) as unknown;
        body = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : null;
      } catch {
        parseError = !String(req.headers['content-type'] ?? '').includes('x-www-form-urlencoded');
      }
    }
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (typeof value !== 'string') continue;
      headers[key] = /^(x-vault-token|authorization)$/i.test(key) ? '[redacted]' : value;
    }
    const record = (status: number): void => {
      this.requests.push({
        at: this.clock.now(),
        method,
        path,
        query: url.search,
        namespace,
        headers,
        body: redact(body),
        status,
      });
    };

    // Fault injection comes first: it models the network and the server's state, not the API.
    const active = this.#faults.find((entry) => entry.remaining > 0 && matchesFault(entry.fault, method, path));
    if (active !== undefined) {
      active.hits += 1;
      active.remaining -= 1;
      if (active.remaining <= 0) this.#faults.splice(this.#faults.indexOf(active), 1);
      const fault = active.fault;
      switch (fault.kind) {
        case 'hang':
          record(0);
          return; // never answer; the socket is destroyed on close()
        case 'reset':
          record(0);
          req.socket.destroy();
          return;
        case 'latency': {
          const range = fault.delayMs ?? 100;
          const delay = typeof range === 'number' ? range : range[0] + Math.random() * (range[1] - range[0]);
          await new Promise((resolve) => setTimeout(resolve, delay));
          break;
        }
        case 'sealed':
          record(503);
          this.#send(
            res,
            path === 'sys/health' ? this.#health(url, true) : { status: 503, body: { errors: ['Vault is sealed'] } },
          );
          return;
        case 'rate-limit':
          record(429);
          this.#send(res, {
            status: 429,
            headers: { 'retry-after': String(fault.retryAfterSeconds ?? 1) },
            body: { errors: [`request path "${path}": rate limit quota exceeded`] },
          });
          return;
        case 'internal-error':
          record(500);
          this.#send(res, { status: 500, body: { errors: [multiError(fault.message ?? 'internal error')] } });
          return;
        case 'precondition-failed':
          record(412);
          this.#send(res, { status: 412, body: { errors: ['required index state not present'] } });
          return;
        case 'standby':
          if (path === 'sys/health') {
            record(429);
            this.#send(res, this.#health(url, false, true));
            return;
          }
          break;
        default:
          break;
      }
    }
    this.#runExpirations();
    let reply: Reply;
    try {
      if (parseError) throw new HttpError(400, ['error parsing JSON']);
      reply = await this.#route(method, path, url, body, req, namespace);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      reply = { status: error.status, body: { errors: error.errors } };
    }
    record(reply.status);
    this.#send(res, reply);
  }

  #health(url: URL, sealed: boolean, standby = false): Reply {
    const code = (name: string, fallback: number): number => {
      const value = url.searchParams.get(name);
      if (value === null) return fallback;
      const parsed = Number(value);
      if (!Number.isInteger(parsed) || parsed < 100 || parsed > 599)
        throw new HttpError(400, [`bad code value for ${name}`]);
      return parsed;
    };
    const standbyOk = url.searchParams.get('standbyok') === 'true';
    const status = sealed
      ? code('sealedcode', 503)
      : standby
        ? standbyOk
          ? code('activecode', 200)
          : code('standbycode', 429)
        : code('activecode', 200);
    return {
      status,
      body: {
        initialized: true,
        sealed,
        standby,
        performance_standby: false,
        replication_performance_mode: 'disabled',
        replication_dr_mode: 'disabled',
        server_time_utc: Math.floor(this.clock.now() / 1000),
        version: '1.17.3+gantry-dev',
        ...(sealed ? {} : { cluster_name: 'gantry-dev', cluster_id: 'gantry-dev-cluster' }),
      },
    };
  }

  #authenticate(req: IncomingMessage, path: string): TokenEntry {
    const header = req.headers['x-vault-token'];
    const bearer = /^Bearer\s+(.+)$/i.exec(String(req.headers['authorization'] ?? ''))?.[1];
    const id = typeof header === 'string' && header !== '' ? header : bearer;
    if (id === undefined) throw new HttpError(403, ['missing client token']);
    const token = this.#tokens.get(id);
    if (token === undefined || token.revoked || (token.expireTime !== null && token.expireTime <= this.clock.now())) {
      throw new HttpError(403, [INVALID_TOKEN]);
    }
    if (!token.policies.includes('root') && this.#denied.some((prefix) => path.startsWith(prefix))) {
      throw new HttpError(403, [POLICY_DENIED]);
    }
    return token;
  }

  #authView(token: TokenEntry, ttlMs: number) {
    return {
      client_token: token.id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      metadata: token.meta,
      lease_duration: Math.floor(ttlMs / 1000),
      renewable: token.renewable,
      entity_id: randomUUID(),
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  async #route(
    method: string,
    path: string,
    url: URL,
    body: Record<string, unknown> | null,
    req: IncomingMessage,
    namespace: string | undefined,
  ): Promise<Reply> {
    const write = method === 'POST' || method === 'PUT';
    if (path === 'sys/health' && (method === 'GET' || method === 'HEAD')) {
      const reply = this.#health(url, this.#sealed);
      return method === 'HEAD' ? { status: reply.status } : reply;
    }
    if (this.#sealed) throw new HttpError(503, ['Vault is sealed']);

    const loginMatch = /^auth\/(.+)\/login$/.exec(path);
    if (loginMatch !== null && write) return this.#login(loginMatch[1]!, body ?? {});

    const token = this.#authenticate(req, path);
    const now = this.clock.now();

    if (path === 'auth/token/lookup-self' && method === 'GET') {
      const ttl = token.expireTime === null ? 0 : Math.ceil((token.expireTime - now) / 1000);
      return this.#envelope({
        data: {
          accessor: token.accessor,
          creation_time: Math.floor(token.issueTime / 1000),
          creation_ttl: Math.floor(token.ttlMs / 1000),
          display_name: token.displayName,
          entity_id: '',
          expire_time: token.expireTime === null ? null : new Date(token.expireTime).toISOString(),
          explicit_max_ttl: 0,
          id: token.id,
          issue_time: new Date(token.issueTime).toISOString(),
          meta: token.meta,
          num_uses: 0,
          orphan: true,
          path: token.path,
          policies: token.policies,
          renewable: token.renewable,
          ttl,
          type: 'service',
        },
        mountType: 'token',
      });
    }
    if (path === 'auth/token/renew-self' && write) {
      if (token.expireTime === null) throw new HttpError(400, ['invalid lease ID']);
      if (!token.renewable) throw new HttpError(400, ['lease is not renewable']);
      const increment = parseDurationSeconds(body?.['increment']);
      if (increment === undefined) throw new HttpError(400, ['invalid increment']);
      const { ttlMs, warning } = this.#calculateTtl(increment, token.ttlMs, token.maxTtlMs, token.issueTime);
      token.expireTime = now + ttlMs;
      this.#armExpiry();
      return this.#envelope({
        auth: this.#authView(token, ttlMs),
        warnings: warning === undefined ? [] : [warning],
        mountType: 'token',
      });
    }
    if (path === 'auth/token/revoke-self' && write) {
      this.#revokeTokenEntry(token);
      await this.#drainRevocations();
      return { status: 204 };
    }
    if (path === 'auth/token/create' && write) {
      const ttl = parseDurationSeconds(body?.['ttl']);
      const max = parseDurationSeconds(body?.['explicit_max_ttl']);
      const created = this.#issueToken(
        {
          tokenTtlSeconds: ttl === undefined || ttl === 0 ? 3600 : ttl,
          tokenMaxTtlSeconds: max === undefined || max === 0 ? SYSTEM_MAX_TTL_SECONDS : max,
          renewable: body?.['renewable'] !== false,
          policies: Array.isArray(body?.['policies']) ? (body['policies'] as string[]) : [],
        },
        'token',
        'auth/token/create',
        {},
      );
      return this.#envelope({ auth: this.#authView(created, created.ttlMs), mountType: 'token' });
    }

    const credsPrefix = `${this.#mounts.database}/creds/`;
    if (path.startsWith(credsPrefix)) {
      if (method !== 'GET') throw new HttpError(405, ['unsupported operation']);
      return this.#createCredentials(decodeURIComponent(path.slice(credsPrefix.length)), token, namespace);
    }
    if (path.startsWith('sys/leases/renew') && write) return this.#renewLease(path, body);
    if (path === 'sys/leases/revoke' && write) {
      const leaseId = body?.['lease_id'];
      if (typeof leaseId !== 'string' || leaseId === '') throw new HttpError(400, ['lease_id must be specified']);
      const lease = this.#leases.get(leaseId);
      if (lease === undefined || lease.revoked) return { status: 204 };
      if (body?.['sync'] === false) {
        void this.#revokeLeaseEntry(lease).catch(() => undefined);
        return { status: 202 };
      }
      try {
        await this.#revokeLeaseEntry(lease);
      } catch (error) {
        throw new HttpError(500, [
          multiError(`failed to revoke entry: ${error instanceof Error ? error.message : String(error)}`),
        ]);
      }
      return { status: 204 };
    }
    if (path === 'sys/leases/lookup' && write) {
      const lease = this.#leases.get(typeof body?.['lease_id'] === 'string' ? body['lease_id'] : '');
      if (lease === undefined || lease.revoked) throw new HttpError(400, ['invalid lease']);
      return this.#envelope({
        data: {
          id: lease.id,
          issue_time: new Date(lease.issueTime).toISOString(),
          expire_time: new Date(lease.expireTime).toISOString(),
          last_renewal: lease.lastRenewal === null ? null : new Date(lease.lastRenewal).toISOString(),
          renewable: lease.renewable,
          ttl: Math.max(0, Math.ceil((lease.expireTime - now) / 1000)),
        },
      });
    }
    const kvPrefix = `${this.#mounts.kv}/data/`;
    if (path.startsWith(kvPrefix))
      return this.#kvRoute(method, decodeURIComponent(path.slice(kvPrefix.length)), url, body);
    throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
  }

  #login(mount: string, body: Record<string, unknown>): Reply {
    if (mount === this.#mounts.approle) {
      const roleId = body['role_id'];
      const entry = [...this.#appRoles.entries()].find(([, role]) => role.roleId === roleId);
      if (typeof roleId !== 'string' || roleId === '') throw new HttpError(400, ['missing role_id']);
      if (entry === undefined || entry[1].secretId !== body['secret_id'])
        throw new HttpError(400, ['invalid role or secret ID']);
      const token = this.#issueToken(entry[1], 'approle', `auth/${mount}/login`, { role_name: entry[0] });
      return this.#envelope({ auth: this.#authView(token, Math.min(token.ttlMs, token.maxTtlMs)) });
    }
    if (mount === this.#mounts.kubernetes) {
      const roleName = body['role'];
      const jwt = body['jwt'];
      if (typeof roleName !== 'string' || roleName === '') throw new HttpError(400, ['missing role']);
      if (typeof jwt !== 'string' || jwt === '') throw new HttpError(400, ['missing jwt']);
      const role = this.#k8sRoles.get(roleName);
      if (role === undefined) throw new HttpError(400, [`invalid role name "${roleName}"`]);
      if (!role.jwts.includes(jwt)) throw new HttpError(403, ['permission denied']);
      const token = this.#issueToken(role, `kubernetes-default-${roleName}`, `auth/${mount}/login`, {
        role: roleName,
        service_account_name: roleName,
        service_account_namespace: 'default',
      });
      return this.#envelope({ auth: this.#authView(token, Math.min(token.ttlMs, token.maxTtlMs)) });
    }
    throw new HttpError(404, [`no handler for route "auth/${mount}/login". route entry not found.`]);
  }

  async #createCredentials(roleName: string, token: TokenEntry, namespace: string | undefined): Promise<Reply> {
    const role = this.#dbRoles.get(roleName);
    if (role === undefined) throw new HttpError(400, [`unknown role: ${roleName}`]);
    const now = this.clock.now();
    const defaultMs = (role.defaultTtlSeconds ?? 3600) * 1000;
    const maxMs = (role.maxTtlSeconds ?? 86_400) * 1000;
    const ttlMs = Math.min(defaultMs, maxMs);
    const seconds = Math.floor(now / 1000);
    const username = `v-${token.displayName.slice(0, 8)}-${roleName.slice(0, 8)}-${base62(20)}-${seconds}`.slice(0, 63);
    const password = (this.#options.generatePassword ?? defaultPassword)();
    let nsSuffix = '';
    if (namespace !== undefined && namespace !== '') {
      let id = this.#namespaces.get(namespace);
      if (id === undefined) {
        id = base62(5);
        this.#namespaces.set(namespace, id);
      }
      nsSuffix = `.${id}`;
    }
    const lease: LeaseEntry = {
      id: `${this.#mounts.database}/creds/${roleName}/${base62(24)}${nsSuffix}`,
      path: `${this.#mounts.database}/creds/${roleName}`,
      role: roleName,
      tokenId: token.id,
      issueTime: now,
      username,
      expireTime: now + ttlMs,
      lastRenewal: null,
      renewable: true,
      revoked: false,
      revokedAt: undefined,
    };
    try {
      await this.#options.database?.onCreate?.(
        { role: roleName, roleConfig: role, username, expiresAt: lease.expireTime + DATABASE_EXPIRY_BUFFER_MS },
        password,
      );
    } catch (error) {
      throw new HttpError(500, [
        multiError(error instanceof Error ? error.message.replaceAll(password, '[password]') : 'create user failed'),
      ]);
    }
    this.#leases.set(lease.id, lease);
    this.#armExpiry();
    return this.#envelope({
      leaseId: lease.id,
      renewable: true,
      leaseDuration: Math.floor(ttlMs / 1000),
      data: { username, password },
      mountType: 'database',
    });
  }

  async #renewLease(path: string, body: Record<string, unknown> | null): Promise<Reply> {
    const fromPath = path.startsWith('sys/leases/renew/') ? path.slice('sys/leases/renew/'.length) : undefined;
    const leaseId = typeof body?.['lease_id'] === 'string' && body['lease_id'] !== '' ? body['lease_id'] : fromPath;
    if (leaseId === undefined || leaseId === '') throw new HttpError(400, ['lease_id must be specified']);
    if (leaseId.startsWith('auth/')) throw new HttpError(400, ['tokens cannot be renewed through this endpoint']);
    const lease = this.#leases.get(leaseId);
    if (lease === undefined || lease.revoked) throw new HttpError(400, ['lease not found']);
    const now = this.clock.now();
    if (lease.expireTime <= now) throw new HttpError(400, ['lease expired']);
    if (!lease.renewable) throw new HttpError(400, ['lease is not renewable']);
    const increment = parseDurationSeconds(body?.['increment']);
    if (increment === undefined) throw new HttpError(400, ['invalid increment']);
    const role = this.#dbRoles.get(lease.role) ?? {};
    const { ttlMs, warning } = this.#calculateTtl(
      increment,
      (role.defaultTtlSeconds ?? 3600) * 1000,
      (role.maxTtlSeconds ?? 86_400) * 1000,
      lease.issueTime,
    );
    lease.expireTime = now + ttlMs;
    lease.lastRenewal = now;
    this.#armExpiry();
    try {
      await this.#options.database?.onRenew?.({
        role: lease.role,
        roleConfig: role,
        username: lease.username,
        expiresAt: lease.expireTime + DATABASE_EXPIRY_BUFFER_MS,
      });
    } catch (error) {
      throw new HttpError(500, [multiError(error instanceof Error ? error.message : 'renew failed')]);
    }
    return this.#envelope({
      leaseId: lease.id,
      renewable: true,
      leaseDuration: Math.floor(ttlMs / 1000),
      warnings: warning === undefined ? [] : [warning],
    });
  }

  #kvRoute(method: string, key: string, url: URL, body: Record<string, unknown> | null): Reply {
    const versions = this.#kv.get(key);
    const metadata = (version: KvVersion, number: number) => ({
      created_time: version.createdTime,
      custom_metadata: null,
      deletion_time: version.deletionTime,
      destroyed: version.destroyed,
      version: number,
    });
    if (method === 'GET') {
      if (versions === undefined || versions.length === 0) throw new HttpError(404, []);
      const wanted = Number(url.searchParams.get('version') ?? 0) || versions.length;
      const version = versions[wanted - 1];
      if (version === undefined) throw new HttpError(404, []);
      if (version.deletionTime !== '' || version.destroyed) {
        return {
          status: 404,
          body: { ...(this.#envelope({ data: { data: null, metadata: metadata(version, wanted) } }).body as object) },
        };
      }
      return this.#envelope({ data: { data: version.data, metadata: metadata(version, wanted) } });
    }
    if (method === 'POST' || method === 'PUT') {
      const data = body?.['data'];
      if (data === null || typeof data !== 'object') throw new HttpError(400, ['no data provided']);
      const cas = (body?.['options'] as { cas?: unknown } | undefined)?.cas;
      const current = versions?.length ?? 0;
      if (typeof cas === 'number' && cas !== current) {
        throw new HttpError(400, [multiError(`check-and-set parameter did not match the current version`)]);
      }
      const number = this.kvPut(key, data as Record<string, unknown>);
      return this.#envelope({ data: metadata(this.#kv.get(key)![number - 1]!, number) });
    }
    if (method === 'DELETE') {
      const latest = versions?.at(-1);
      if (latest !== undefined) latest.deletionTime = new Date(this.clock.now()).toISOString();
      return { status: 204 };
    }
    throw new HttpError(405, ['unsupported operation']);
  }
}

/**
 * Starts a Vault-compatible dev server on 127.0.0.1 (a free port by default) for tests: tokens, AppRole and
 * Kubernetes logins, database credentials with leases (pair it with {@link postgresRoleHooks} for real PostgreSQL
 * roles), KV v2, an expiration manager driven by `clock`, and fault injection.
 * @throws SecretsError `GANTRY_SECRETS_INVALID_OPTIONS` for invalid options; the listen error when the port is taken
 * @example
 * const vault = await createVaultDevServer({ database: postgresRoleHooks(adminConnection) });
 * vault.addDatabaseRole('app', { defaultTtlSeconds: 60, maxTtlSeconds: 300 });
 * const { roleId, secretId } = vault.addAppRole('orders');
 * // createVault({ endpoint: vault.address, auth: { method: 'approle', roleId, secretId } })
 */
export async function createVaultDevServer(options: VaultDevServerOptions = {}): Promise<VaultDevServer> {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw invalidOption('port', 'an integer port', port);
  const server = new DevServer(options);
  await server.listen(port);
  return server;
}
