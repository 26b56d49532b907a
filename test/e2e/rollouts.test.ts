// The demo's scenarios as assertions, against real orders-service pods, real gantry-agent sidecars, the weighted
// proxy and open-loop keep-alive load (examples/orders-service/demo):
//   - good rollouts, back to back at 150 requests/s: ten canaries of a good build walked 10 → 25 → 50 → 100 % by
//     the demo's controller; none may be rolled back and no request may fail, including while each old pod gets
//     SIGTERM under keep-alive load at promotion; then the serving pod is replaced three times (new pod ready and
//     in rotation, then SIGTERM to the old one) and again no request fails;
//   - at the demo's 20 requests/s: `contract` refused while a v1 pod is alive and applied once it is gone; then a
//     bad canary (5 % errors, slower p95) caught by its sidecar and rolled back within 60 s.
// The two scenarios have their own pods, proxy and database, and run one after the other: side by side, the
// second one's pod starts skewed the first one's latency comparisons on a 2-core machine.
import { setTimeout as sleep } from 'node:timers/promises';
import { createRunDirectory } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutResult } from '../../examples/orders-service/demo/controller.ts';
import {
  attemptContract,
  expandAndBackfill,
  startRun,
  type ContractAttempt,
  type Run,
} from '../../examples/orders-service/demo/run.ts';
import { BAD_CANARY_PROFILE, ROLLOUTS_PROFILE, SWITCH_SETTINGS } from './profiles.ts';

const ROLLOUTS = 10;
/** The bound on detecting a bad canary at 20 requests/s. */
const DETECT_WITHIN_MS = 60_000;

/** Waits until `count` requests that started at or after `from` have been answered (or failed). */
async function untilObserved(run: Run, from: number, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (run.timeline.between(from, Number.POSITIVE_INFINITY).requests < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} requests answered within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function report(line: string): void {
  process.stderr.write(`[e2e] ${line}\n`);
}

/** Up to five failed requests in [from, to) and what the controller had just done. */
function failures(run: Run, from: number, to: number): string {
  const list = run.timeline.failuresBetween(from, to);
  if (list.length === 0) return '';
  const shown = list.slice(0, 5).map((item) => `${item.status} ${item.error ?? ''} ${item.after}`);
  return `; ${list.length} failed: ${shown.join(' | ')}`;
}

describe('good rollouts at 150 requests/s', () => {
  let run: Run;
  const results: RolloutResult[] = [];

  beforeAll(async () => {
    run = await startRun({
      profile: ROLLOUTS_PROFILE,
      runDirectory: createRunDirectory('e2e-rollouts'),
      // The rotating pool: Vault hands out database credentials that expire every minute, under load.
      infra: { postgres: server('postgres'), unleash: false, kafka: false, vault: true, leaseSeconds: 60 },
    });
    await expandAndBackfill(run.infra);
    await run.deploy('2.0.0');
    const started = Date.now();
    run.startLoad();
    await untilObserved(run, started, ROLLOUTS_PROFILE.rate);
  }, 180_000);

  afterAll(async () => {
    await run?.close();
  }, 120_000);

  it(
    `promotes ${ROLLOUTS} good canaries in a row with no false rollback and no failed request`,
    { timeout: ROLLOUTS * 45_000 },
    async () => {
      for (let index = 1; index <= ROLLOUTS; index += 1) {
        const result = await run.rollout(`2.0.${index}`, { revision: index });
        results.push(result);
        // Stop at the first rollback so the failure names it.
        expect(
          result.outcome,
          `rollout ${index}: ${result.reasonCode} ${result.reason} (logs: ${run.stable[0]?.appLog ?? ''})`,
        ).toBe('promoted');
      }
      const end = Date.now();
      await untilObserved(run, end, ROLLOUTS_PROFILE.rate / 2);
      const window = run.timeline.between(results[0]!.startedAt, end);
      report(
        `${ROLLOUTS} rollouts at ${ROLLOUTS_PROFILE.rate} req/s: ${window.requests} requests, ${window.failed} failed, ` +
          `${window.dropped} dropped; decision times ${results.map((result) => (result.decisionMs / 1000).toFixed(1)).join(' ')} s` +
          failures(run, results[0]!.startedAt, end),
      );
      expect(window).toMatchObject({ failed: 0, dropped: 0 });
      // The load really ran through every rollout (at least half the nominal rate on a busy machine).
      expect(window.requests).toBeGreaterThan(((end - results[0]!.startedAt) / 1000) * ROLLOUTS_PROFILE.rate * 0.5);
      // The promotions really moved traffic: the last build serves alone, every canary got its share and passed
      // the comparison with its baseline at 50 %.
      expect(run.stable.map((pod) => pod.version)).toEqual([`2.0.${ROLLOUTS}`]);
      for (const result of results) {
        expect(result.answers.some((answer) => answer.gate === 'promotion' && answer.verdict === 'pass')).toBe(true);
        expect(result.answers.every((answer) => answer.verdict !== 'fail')).toBe(true);
      }
    },
  );

  it(
    'answers every request while the serving pod is restarted three times with SIGTERM under keep-alive load',
    { timeout: 120_000 },
    async () => {
      const before = Date.now();
      const names: string[] = [];
      for (let restart = 0; restart < 3; restart += 1) {
        names.push(run.stable[0]!.name);
        await run.rollingRestart();
      }
      const end = Date.now();
      await untilObserved(run, end, ROLLOUTS_PROFILE.rate / 2);
      const window = run.timeline.between(before, end);
      report(
        `3 SIGTERM restarts: ${window.requests} requests, ${window.failed} failed, ${window.dropped} dropped` +
          failures(run, before, end),
      );
      // Three different pods got SIGTERM, and a fourth serves now.
      expect(new Set([...names, run.stable[0]!.name]).size).toBe(4);
      expect(window.requests).toBeGreaterThan(ROLLOUTS_PROFILE.rate);
      expect(window).toMatchObject({ failed: 0, dropped: 0 });
    },
  );
});

describe('contract and a bad canary at 20 requests/s', () => {
  let run: Run;

  beforeAll(async () => {
    run = await startRun({
      profile: BAD_CANARY_PROFILE,
      runDirectory: createRunDirectory('e2e-bad-canary'),
      // The plain pool (no Vault) here; the other scenario covers the rotating one.
      infra: { postgres: server('postgres'), unleash: false, kafka: false, vault: false },
    });
    await run.deploy('1.0.0');
    const started = Date.now();
    run.startLoad();
    await untilObserved(run, started, BAD_CANARY_PROFILE.rate);
    await expandAndBackfill(run.infra);
  }, 180_000);

  afterAll(async () => {
    await run?.close();
  }, 120_000);

  it('refuses contract while a v1 pod is alive and applies it once v1 is gone', { timeout: 150_000 }, async () => {
    let whileAlive: ContractAttempt | undefined;
    let afterGone: ContractAttempt | undefined;
    const result = await run.rollout('2.0.0', {
      revision: 1,
      settings: SWITCH_SETTINGS,
      hooks: {
        beforeScaleDown: async () => {
          whileAlive = await attemptContract(run.infra);
        },
        afterScaleDown: async () => {
          afterGone = await attemptContract(run.infra);
        },
      },
    });
    report(`contract while v1 alive: ${whileAlive?.outcome} — ${whileAlive?.message.slice(0, 200)}`);
    report(`contract after v1 gone: ${afterGone?.outcome} — ${afterGone?.message.slice(0, 200)}`);
    expect(result.outcome, `${result.reasonCode} ${result.reason}`).toBe('promoted');
    expect(whileAlive?.outcome).toBe('refused');
    // Refused because of v1 (schema ≤ 3), not because of the v2 pods that already serve.
    expect(whileAlive?.blocking.length).toBeGreaterThan(0);
    for (const client of whileAlive?.blocking ?? []) {
      expect(client).toMatchObject({ version: '1.0.0', schemaSupports: { max: '3' } });
    }
    expect(afterGone?.outcome, afterGone?.message).toBe('applied');
    // The column really went, and v2 serves on the contracted schema without a failed request.
    const admin = new pg.Client({ connectionString: run.infra.adminUrl });
    await admin.connect();
    try {
      const columns = await admin.query<{ column_name: string }>(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'",
      );
      const names = columns.rows.map((row) => row.column_name);
      expect(names).toContain('customer_key');
      expect(names).not.toContain('customer_id');
    } finally {
      await admin.end();
    }
    const contracted = Date.now();
    await untilObserved(run, contracted, BAD_CANARY_PROFILE.rate * 2);
    expect(run.timeline.between(result.startedAt, Date.now())).toMatchObject({ failed: 0, dropped: 0 });
  });

  it(`rolls a bad canary back automatically within ${DETECT_WITHIN_MS / 1000} s`, { timeout: 180_000 }, async () => {
    const result = await run.rollout('3.0.0', { revision: 1 });
    const end = Date.now();
    await untilObserved(run, end, BAD_CANARY_PROFILE.rate);
    const window = run.timeline.between(result.startedAt, end);
    const canaryFailed = run.timeline.failedByVersion('3.0.0', result.startedAt, end);
    report(
      `bad canary at ${BAD_CANARY_PROFILE.rate} req/s: ${result.outcome} (${result.reasonCode}: ${result.reason.slice(0, 100)}) ` +
        `after ${(result.decisionMs / 1000).toFixed(1)} s at ${result.decidedAtWeight}%; ` +
        `${window.requests} requests, ${window.failed} failed (${canaryFailed} on the canary) ` +
        JSON.stringify(run.timeline.failureKinds(result.startedAt, end)),
    );
    expect(result.outcome, `${result.reasonCode} ${result.reason}`).toBe('rolled-back');
    // Rolled back by a failing verdict of its sidecar, not by the controller giving up on a step.
    expect(result.reasonCode).not.toBe('ANALYSIS_TIMEOUT');
    expect(result.answers.at(-1)?.verdict).toBe('fail');
    expect(result.decisionMs).toBeLessThan(DETECT_WITHIN_MS);
    // v2 still serves alone, and every failed request was the bad canary's (none dropped by the rollback).
    expect(run.stable.map((pod) => pod.version)).toEqual(['2.0.0']);
    expect(window.dropped).toBe(0);
    expect(window.failed).toBe(canaryFailed);
  });
});
