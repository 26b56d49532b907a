// Drains an HTTP/1.1 server without dropping requests: stop accepting, let in-flight requests finish and answer
// them (and any request that still arrives on an open keep-alive connection) with `Connection: close`, close
// sockets that stay idle, destroy whatever is left at the deadline.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Clock, TimerHandle } from './clock.ts';

interface SocketState {
  inFlight: number;
  idleSince: number;
  readonly responses: Set<ServerResponse>;
  idleTimer: TimerHandle | undefined;
}

/** What a drain did. */
export interface DrainResult {
  /** Sockets destroyed at the deadline. */
  readonly forcedSockets: number;
  /** Requests still in flight on those sockets (they failed). */
  readonly forcedRequests: number;
  /** Requests answered with `Connection: close` during the drain. */
  readonly closedAfterResponse: number;
  readonly durationMs: number;
}

export class ServerDrainer {
  readonly server: Server;
  readonly #clock: Clock;
  readonly #sockets = new Map<Socket, SocketState>();
  #draining = false;
  #closedAfterResponse = 0;
  #idleGraceMs = 0;
  #onDrained: (() => void) | undefined;
  readonly #connectionEvent: 'connection' | 'secureConnection';

  constructor(server: Server, clock: Clock) {
    this.server = server;
    this.#clock = clock;
    this.#connectionEvent = server instanceof TlsServer ? 'secureConnection' : 'connection';
    server.on(this.#connectionEvent, this.#onConnection);
    // Before the application's listener, so `Connection: close` is set before any handler writes headers.
    server.prependListener('request', this.#onRequest);
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Open connections the drainer knows of. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Stops tracking (the server keeps running). */
  detach(): void {
    this.server.off(this.#connectionEvent, this.#onConnection);
    this.server.off('request', this.#onRequest);
  }

  /**
   * Stops accepting, drains and resolves once every connection is closed; after `timeoutMs` the remaining sockets
   * are destroyed, or as soon as `signal` aborts. `timeoutMs = 0` destroys them at once (no drain).
   */
  async drain(timeoutMs: number, idleGraceMs: number, signal?: AbortSignal): Promise<DrainResult> {
    const started = this.#clock.now();
    this.#draining = true;
    this.#idleGraceMs = idleGraceMs;
    if (this.server.listening) {
      // net.Server's close, not http.Server's: since Node 19 the latter also destroys every idle keep-alive socket
      // at once, racing clients that are writing their next request on it (they see ECONNRESET). Idle sockets get
      // `idleGraceMs` below instead.
      NetServer.prototype.close.call(this.server);
    }
    const now = this.#clock.now();
    for (const [socket, state] of this.#sockets) {
      for (const response of state.responses) this.#markClose(response);
      if (state.inFlight === 0) this.#armIdleClose(socket, state, now);
    }
    let forcedSockets = 0;
    let forcedRequests = 0;
    if (this.#sockets.size > 0) {
      await new Promise<void>((resolve) => {
        let timer: TimerHandle | undefined = undefined;
        const finish = (): void => {
          if (timer !== undefined) this.#clock.clearTimeout(timer);
          signal?.removeEventListener('abort', force);
          this.#onDrained = undefined;
          resolve();
        };
        this.#onDrained = finish;
        const force = (): void => {
          for (const [socket, state] of this.#sockets) {
            forcedSockets += 1;
            forcedRequests += state.inFlight;
            socket.destroy();
          }
          this.#sockets.clear();
          finish();
        };
        if (timeoutMs <= 0 || signal?.aborted === true) {
          force();
          return;
        }
        timer = this.#clock.setTimeout(force, timeoutMs);
        signal?.addEventListener('abort', force, { once: true });
      });
    }
    // Lets http.Server run its own close bookkeeping (it stops its connection-checking interval).
    if (typeof this.server.closeAllConnections === 'function') this.server.closeAllConnections();
    this.server.close(() => undefined);
    return {
      forcedSockets,
      forcedRequests,
      closedAfterResponse: this.#closedAfterResponse,
      durationMs: this.#clock.now() - started,
    };
  }

  readonly #onConnection = (socket: Socket): void => {
    const state: SocketState = {
      inFlight: 0,
      idleSince: this.#clock.now(),
      responses: new Set(),
      idleTimer: undefined,
    };
    this.#sockets.set(socket, state);
    socket.once('close', () => {
      if (state.idleTimer !== undefined) this.#clock.clearTimeout(state.idleTimer);
      this.#sockets.delete(socket);
      if (this.#draining && this.#sockets.size === 0) this.#onDrained?.();
    });
    // A connection accepted in the same tick as the drain started (already in the accept queue).
    if (this.#draining) this.#armIdleClose(socket, state, this.#clock.now());
  };

  readonly #onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const socket = request.socket;
    const state = this.#sockets.get(socket);
    if (state === undefined) return;
    state.inFlight += 1;
    state.responses.add(response);
    if (state.idleTimer !== undefined) {
      this.#clock.clearTimeout(state.idleTimer);
      state.idleTimer = undefined;
    }
    if (this.#draining) this.#markClose(response);
    let done = false;
    const onDone = (): void => {
      if (done) return;
      done = true;
      state.inFlight -= 1;
      state.responses.delete(response);
      state.idleSince = this.#clock.now();
      // A response sent with `Connection: close` makes Node close the socket itself; one whose headers were sent
      // before the drain leaves a keep-alive socket behind, which gets the idle grace.
      if (this.#draining && state.inFlight === 0 && !socket.destroyed)
        this.#armIdleClose(socket, state, state.idleSince);
    };
    response.once('finish', onDone);
    response.once('close', onDone);
  };

  #markClose(response: ServerResponse): void {
    if (response.headersSent) return;
    if (response.req.httpVersionMajor >= 2) return;
    response.setHeader('Connection', 'close');
    this.#closedAfterResponse += 1;
  }

  #armIdleClose(socket: Socket, state: SocketState, now: number): void {
    if (state.idleTimer !== undefined) this.#clock.clearTimeout(state.idleTimer);
    const wait = Math.max(0, state.idleSince + this.#idleGraceMs - now);
    state.idleTimer = this.#clock.setTimeout(() => {
      state.idleTimer = undefined;
      if (state.inFlight === 0) socket.destroy();
    }, wait);
  }
}
