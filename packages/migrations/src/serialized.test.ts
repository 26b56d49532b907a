import { describe, expect, it } from 'vitest';
import { serialized } from './serialized.ts';

/** A task whose runs wait until released, recording how many overlap. */
function controlledTask() {
  const releases: (() => void)[] = [];
  let started = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const task = async (): Promise<number> => {
    started += 1;
    const id = started;
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise<void>((resolve) => releases.push(resolve));
    inFlight -= 1;
    if (id === 2 && failSecond) throw new Error('run 2 failed');
    return id;
  };
  let failSecond = false;
  return {
    task,
    started: () => started,
    maxInFlight: () => maxInFlight,
    /** Releases the oldest waiting run, then lets the microtasks settle. */
    releaseNext: async () => {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
    failSecond: () => {
      failSecond = true;
    },
  };
}

describe('serialized (heartbeats and monitor refreshes)', () => {
  it('never overlaps runs; calls during a run share one fresh run that starts after it', async () => {
    const control = controlledTask();
    const runner = serialized(control.task);
    const first = runner.run();
    const second = runner.run();
    const third = runner.run();
    expect(control.started()).toBe(1);
    await control.releaseNext();
    expect(await first).toBe(1);
    // The queued run started only after the first one finished, and both later callers get it.
    expect(control.started()).toBe(2);
    await control.releaseNext();
    expect(await second).toBe(2);
    expect(await third).toBe(2);
    expect(control.maxInFlight()).toBe(1);
  });

  it('idle() waits for the run in progress and the one queued behind it, not only the latest', async () => {
    const control = controlledTask();
    const runner = serialized(control.task);
    void runner.run();
    void runner.run();
    let idle = false;
    const waiting = runner.idle().then(() => {
      idle = true;
    });
    await control.releaseNext();
    expect(idle).toBe(false);
    await control.releaseNext();
    await waiting;
    expect(idle).toBe(true);
    expect(control.started()).toBe(2);
  });

  it('keeps serving after a failed run', async () => {
    const control = controlledTask();
    control.failSecond();
    const runner = serialized(control.task);
    void runner.run();
    const failing = runner.run().catch((error: unknown) => error);
    await control.releaseNext();
    await control.releaseNext();
    expect(await failing).toMatchObject({ message: 'run 2 failed' });
    const after = runner.run();
    await control.releaseNext();
    expect(await after).toBe(3);
    await runner.idle();
  });
});
