import { describe, expect, it } from 'vitest';
import { IdleScheduler } from './idle-scheduler.ts';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('IdleScheduler', () => {
  it('runs a task on the next turn when nothing is in flight', async () => {
    const scheduler = new IdleScheduler();
    const ran: string[] = [];
    scheduler.schedule(() => ran.push('a'), 1_000);
    expect(ran).toEqual([]); // never inside the caller's own turn
    await tick();
    expect(ran).toEqual(['a']);
  });

  it('holds tasks while foreground calls are in flight and runs them once the last one leaves', async () => {
    const scheduler = new IdleScheduler();
    const ran: string[] = [];
    scheduler.enter();
    scheduler.enter();
    scheduler.schedule(() => ran.push('a'), 1_000);
    scheduler.schedule(() => ran.push('b'), 1_000);
    await tick();
    scheduler.leave();
    await tick();
    expect(ran).toEqual([]);
    expect(scheduler.queued).toBe(2);
    scheduler.leave();
    await tick();
    expect(ran).toEqual(['a', 'b']);
    expect(scheduler.queued).toBe(0);
  });

  it('runs a task at its deadline when the process never becomes idle', async () => {
    const scheduler = new IdleScheduler();
    const ran: number[] = [];
    const started = performance.now();
    scheduler.enter();
    scheduler.schedule(() => ran.push(performance.now() - started), 30);
    scheduler.schedule(() => ran.push(-1), 5_000);
    await sleep(10);
    expect(ran).toEqual([]);
    await sleep(60);
    expect(ran).toHaveLength(1); // only the overdue one
    expect(ran[0]).toBeGreaterThanOrEqual(29);
    expect(scheduler.queued).toBe(1);
    scheduler.leave();
    await tick();
    expect(ran).toHaveLength(2);
  });

  it('never counts below zero', async () => {
    const scheduler = new IdleScheduler();
    scheduler.leave();
    expect(scheduler.busy).toBe(0);
    const ran: string[] = [];
    scheduler.schedule(() => ran.push('a'), 1_000);
    await tick();
    expect(ran).toEqual(['a']);
  });
});
