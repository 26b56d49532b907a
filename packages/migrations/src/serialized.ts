// One-at-a-time runs of a background task (heartbeats, monitor refreshes): runs never overlap, so a slow one can
// neither finish after a newer one (and overwrite its result) nor outlive a stop() that waited for "the" run.

/** A task that never runs twice at once. */
export interface SerializedTask<T> {
  /**
   * Runs the task. While a run is in progress, the call waits for it and then starts a fresh run, shared by every
   * call made meanwhile: a caller always gets the result of a run that started after its call.
   */
  run(): Promise<T>;
  /** Resolves once no run is in progress or waiting. */
  idle(): Promise<void>;
}

/** Wraps `task` so that its runs never overlap. */
export function serialized<T>(task: () => Promise<T>): SerializedTask<T> {
  let running: Promise<T> | undefined;
  let queued: Promise<T> | undefined;
  const run = (): Promise<T> => {
    if (running === undefined) {
      const current: Promise<T> = task().finally(() => {
        if (running === current) running = undefined;
      });
      running = current;
      return current;
    }
    queued ??= running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        queued = undefined;
        return run();
      });
    return queued;
  };
  const idle = async (): Promise<void> => {
    while (running !== undefined || queued !== undefined) await Promise.allSettled([running, queued]);
  };
  return { run, idle };
}
