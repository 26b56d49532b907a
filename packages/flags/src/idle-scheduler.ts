// Comparison reads are background work: they should use the gaps between requests, not the time of the requests
// that arrive while they run. The scheduler holds them until no foreground call (an authoritative read or write of
// any migration flag in the process) is in flight, and runs them then — or at their deadline, so that a server that
// is never idle still compares (later), and nothing waits forever.

interface Task {
  readonly run: () => void;
  readonly deadline: number;
}

/**
 * A queue of background tasks that start when no foreground call is in flight, or at their deadline.
 * @internal
 */
export class IdleScheduler {
  #busy = 0;
  readonly #queue: Task[] = [];
  #drainScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Foreground calls in flight. */
  get busy(): number {
    return this.#busy;
  }

  /** Tasks waiting for an idle moment. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Marks a foreground call as started; call `leave()` when it settles. */
  enter(): void {
    this.#busy += 1;
  }

  /** Marks a foreground call as settled; the queue runs once none is left. */
  leave(): void {
    this.#busy = Math.max(0, this.#busy - 1);
    if (this.#busy === 0 && this.#queue.length > 0) this.#scheduleDrain();
  }

  /** Queues `run` for the next idle moment, at the latest `maxDelayMs` from now. */
  schedule(run: () => void, maxDelayMs: number): void {
    const deadline = this.#now() + maxDelayMs;
    this.#queue.push({ run, deadline });
    // After the current I/O callbacks (the response being written) either way.
    if (this.#busy === 0) this.#scheduleDrain();
    this.#armTimer(deadline);
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  /** Starts the tasks that may run now — all when idle, else the overdue ones — and re-arms the deadline timer. */
  #drain(): void {
    const now = this.#now() + 1; // timers round to whole milliseconds
    const idle = this.#busy === 0;
    const waiting: Task[] = [];
    const ready: Task[] = [];
    for (const task of this.#queue.splice(0)) (idle || task.deadline <= now ? ready : waiting).push(task);
    this.#queue.push(...waiting);
    for (const task of ready) task.run();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#queue.length > 0) this.#armTimer(Math.min(...this.#queue.map((task) => task.deadline)));
  }

  #armTimer(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#drain(), Math.max(0, at - this.#now()));
    this.#timer.unref();
  }
}

/** The process-wide scheduler every migration flag shares: one flag's requests also hold back another's comparisons. */
export const idleScheduler = new IdleScheduler();
