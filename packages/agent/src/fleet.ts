// The fleet view: the latest summary and a totals history per pod, fed by this agent itself, by peer agents
// (static URLs or a DNS name resolving to them, pulling `/gate/v1/summary`) and by the Kafka topic
// `gantry.fleet` (one message per pod and interval, keyed by pod). Pods not heard from for `staleAfterMs` leave.
// Only pods of this agent's own fleet (same service and namespace) are kept: the topic is shared cluster-wide.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TotalsHistory } from './history.ts';
import type { PodView } from './gates.ts';
import type { HttpClient } from './http-client.ts';
import type { Logger } from './logger.ts';
import type { Resolver } from './options.ts';
import { summaryFromJson, type PodSummary } from './summary.ts';

/**
 * The default resolver: every address of a name (A and AAAA), like a headless Service's endpoints.
 * @example await defaultResolver('orders-agents.shop.svc.cluster.local') // ['10.0.0.12', ...]
 */
export const defaultResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

interface Member {
  summary: PodSummary;
  readonly history: TotalsHistory;
  seenAt: number;
  readonly isSelf: boolean;
}

/** Pods this agent knows about. */
export class FleetStore {
  readonly #members = new Map<string, Member>();
  readonly #historyMs: number;
  readonly #staleAfterMs: number;
  readonly #accepts: (summary: PodSummary) => boolean;
  #version = 0;

  /** `accepts` decides which peer summaries belong to this fleet (default: all). */
  constructor(historyMs: number, staleAfterMs: number, accepts: (summary: PodSummary) => boolean = () => true) {
    this.#historyMs = historyMs;
    this.#staleAfterMs = staleAfterMs;
    this.#accepts = accepts;
  }

  /**
   * Records a summary (own or a peer's); `false` when a peer's summary is not of this fleet and was ignored.
   * Out-of-order summaries are ignored by the history.
   */
  update(summary: PodSummary, receivedAt: number, isSelf = false): boolean {
    if (!isSelf && !this.#accepts(summary)) return false;
    let member = this.#members.get(summary.pod);
    if (member === undefined || (member.isSelf && !isSelf)) {
      if (member?.isSelf === true) return true;
      member = { summary, history: new TotalsHistory(this.#historyMs), seenAt: receivedAt, isSelf };
      this.#members.set(summary.pod, member);
    }
    if (summary.at < member.summary.at) return true;
    this.#version += 1;
    member.summary = summary;
    member.seenAt = receivedAt;
    member.history.add(summary.at, summary.totals);
    return true;
  }

  /** Pods heard from recently (self always). */
  views(now: number): PodView[] {
    const views: PodView[] = [];
    for (const [pod, member] of this.#members) {
      if (!member.isSelf && now - member.seenAt > this.#staleAfterMs) {
        this.#members.delete(pod);
        this.#version += 1;
        continue;
      }
      views.push({ summary: member.summary, history: member.history, isSelf: member.isSelf });
    }
    return views;
  }

  /** Increases with every accepted summary (and pod expiry). */
  get version(): number {
    return this.#version;
  }

  /** Number of pods known, for metrics. */
  get size(): number {
    return this.#members.size;
  }
}

/** Options of {@link PeerPoller}. */
export interface PeerPollerOptions {
  readonly peers: readonly string[];
  readonly dns: { readonly name: string; readonly port: number; readonly protocol: 'http' | 'https' } | undefined;
  readonly resolver: Resolver;
  readonly http: HttpClient;
  readonly timeoutMs: number;
  readonly token: string | undefined;
  readonly selfPod: string;
  readonly logger: Logger;
  readonly now: () => number;
  readonly onError: () => void;
}

/** Pulls peer summaries over HTTP. */
export class PeerPoller {
  readonly #options: PeerPollerOptions;
  readonly #store: FleetStore;
  #lastDnsError = '';

  constructor(options: PeerPollerOptions, store: FleetStore) {
    this.#options = options;
    this.#store = store;
  }

  /** Current peer base URLs (static + DNS). */
  async targets(): Promise<string[]> {
    const targets = new Set(this.#options.peers);
    const dns = this.#options.dns;
    if (dns !== undefined) {
      try {
        for (const address of await this.#options.resolver(dns.name)) {
          const host = isIP(address) === 6 ? `[${address}]` : address;
          targets.add(`${dns.protocol}://${host}:${dns.port}`);
        }
        this.#lastDnsError = '';
      } catch (error) {
        const message = String((error as Error)?.message ?? error);
        if (message !== this.#lastDnsError) {
          this.#options.logger.warn(
            { event: 'agent.fleet.dns_failed', name: dns.name, err: message },
            'peer DNS lookup failed',
          );
          this.#lastDnsError = message;
        }
        this.#options.onError();
      }
    }
    return [...targets];
  }

  /** One poll round: every target in parallel, each bounded by the timeout. */
  async poll(): Promise<void> {
    const targets = await this.targets();
    await Promise.all(
      targets.map(async (base) => {
        try {
          const response = await this.#options.http(`${base}/gate/v1/summary`, {
            headers: {
              accept: 'application/json',
              ...(this.#options.token === undefined ? {} : { authorization: `Bearer ${this.#options.token}` }),
            },
            timeoutMs: this.#options.timeoutMs,
            maxBytes: 1024 * 1024,
          });
          const text = response.body;
          if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
          const summary = summaryFromJson(JSON.parse(text));
          if (summary === undefined) throw new Error('not a pod summary');
          if (summary.pod === this.#options.selfPod) return;
          this.#store.update(summary, this.#options.now());
        } catch (error) {
          this.#options.onError();
          this.#options.logger.debug(
            { event: 'agent.fleet.peer_failed', peer: base, err: String((error as Error)?.message ?? error) },
            'peer summary failed',
          );
        }
      }),
    );
  }
}
