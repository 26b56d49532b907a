// The demo's final summary: the same facts as text for the terminal (and the README), as label/value pairs for
// the HTML report, and as JSON (`--json`).
import type { DemoResult, RolloutSummary } from './scenario.ts';

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const duration = (ms: number): string => {
  const total = Math.round(ms / 1000);
  return total < 60 ? `${total} s` : `${Math.floor(total / 60)}m${String(total % 60).padStart(2, '0')}s`;
};
const count = (value: number): string => value.toLocaleString('en-US');
const plural = (value: number, noun: string): string => `${count(value)} ${noun}${value === 1 ? '' : 's'}`;
const clock = (at: number, since: number): string => {
  const total = Math.max(0, Math.round((at - since) / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, '0')}`;
};

function verdictTrail(result: RolloutSummary): string {
  const changes: string[] = [];
  let previous = '';
  for (const answer of result.answers) {
    const text = `${answer.weight}% ${answer.gate} ${answer.verdict}`;
    if (text !== previous) changes.push(text);
    previous = text;
  }
  return changes.join(' → ');
}

/** Label/value rows shared by the text summary and the report. */
export function summaryRows(result: DemoResult): [string, string][] {
  const servers = [
    ...Object.entries(result.startSeconds).map(([name, value]) => `${name} ${value} s`),
    ...(result.services.vault ? ['Vault dev server'] : []),
  ].join(', ');
  const { v2, v3 } = result;
  const oldClients = result.contract.whileOldAlive.blocking;
  const refusedBecause =
    oldClients.length === 0
      ? result.contract.whileOldAlive.message.slice(0, 120)
      : `${plural(new Set(oldClients.filter((client) => client.source === 'heartbeat').map((client) => client.instance)).size, 'v1 instance')} ` +
        `(${oldClients[0]!.service}@${oldClients[0]!.version}, schema ≤ ${oldClients[0]!.schemaSupports.max}) still alive, ` +
        `${plural(oldClients.filter((client) => client.source === 'connection').length, 'database session')} of theirs open`;
  const rows: [string, string][] = [
    ['Servers', servers || 'none started'],
    [
      'Traffic',
      `${result.rate} req/s for ${duration(result.finishedAt - result.startedAt)}: ${count(result.totals.requests)} requests served, ` +
        `${count(result.totals.failed)} failed (${count(v3.canaryFailed)} of them answered by v3's canary), ${count(result.totals.dropped)} dropped`,
    ],
    [
      'Schema',
      `${result.expand.expanded.join(', ')} and a backfill of ${count(result.expand.backfilledRows)} rows while v1 served`,
    ],
    [
      'v2 (good)',
      `${v2.outcome} ${duration(v2.decisionMs)} after its first request; ${count(v2.failed)} failed of ${count(v2.requests)} requests during the rollout, ` +
        `${result.drainedPods} v1 pods drained after SIGTERM`,
    ],
    [
      'v3 (bad)',
      `${v3.outcome === 'rolled-back' ? 'rolled back' : v3.outcome} — time to detect ${seconds(v3.decisionMs)} at ${v3.decidedAtWeight}% ` +
        `(${v3.reasonCode}: ${v3.reason.slice(0, 90)}); ${plural(v3.canaryFailed, 'request')} failed on the canary`,
    ],
    [
      'Contract V4',
      `${result.contract.whileOldAlive.outcome} while ${refusedBecause}; ${result.contract.afterOldGone.outcome} once they were gone`,
    ],
  ];
  if (result.services.vault) {
    rows.push(['Credentials', `Vault rotated the database credentials ${result.rotations} times under load`]);
  }
  if (result.kafkaMessages !== null) {
    rows.push([
      'Kafka',
      `${count(result.kafkaMessages.orders)} order events on orders.events, ${count(result.kafkaMessages.agentEvents)} agent CloudEvents on gantry.events`,
    ]);
  }
  rows.push(['Verdicts v2', verdictTrail(v2)], ['Verdicts v3', verdictTrail(v3)]);
  for (const notice of result.notices) rows.push(['Notice', notice]);
  const failed = result.expectations.filter((expectation) => !expectation.ok);
  rows.push([
    'Result',
    failed.length === 0
      ? `all ${result.expectations.length} expectations met`
      : `${failed.length} expectation(s) NOT met: ${failed.map((item) => `${item.name} (${item.detail})`).join('; ')}`,
  ]);
  return rows;
}

/** The verdict changes of both rollouts, one per line, with the time since the demo started. */
/**
 * A reason cut to one timeline column. A pass lists every check that held ("no manual hold; …; err 0.00%, p95
 * 10ms, n=21 within SLO"): its last clause, the evidence, is the part worth reading.
 */
export function briefReason(verdict: string, reason: string, width = 70): string {
  const text = verdict === 'pass' ? (reason.split('; ').at(-1) ?? reason) : reason;
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

export function verdictTimeline(result: DemoResult): string[] {
  const lines: string[] = [];
  for (const rollout of [result.v2, result.v3]) {
    let previous = '';
    for (const answer of rollout.answers) {
      const key = `${answer.weight}/${answer.gate}/${answer.verdict}/${answer.reasonCode}`;
      if (key === previous) continue;
      previous = key;
      lines.push(
        `${clock(answer.at, result.startedAt)}  v${rollout.version.split('.')[0]} ${String(answer.weight).padStart(3)}% ${answer.gate.padEnd(9)} ` +
          `${answer.verdict.padEnd(7)} ${answer.reasonCode.padEnd(17)} ${briefReason(answer.verdict, answer.reason)}`,
      );
    }
    lines.push(
      `${clock(rollout.decidedAt, result.startedAt)}  v${rollout.version.split('.')[0]} ${rollout.outcome.toUpperCase()}`,
    );
  }
  return lines;
}

/** The summary as printed at the end of `./gantry demo`. */
export function formatSummary(result: DemoResult, reportPath: string | undefined): string {
  const rows = summaryRows(result);
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = ['', 'Gantry demo — summary', ''];
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(width)}  ${value}`);
  lines.push('', '  Verdict timeline (changes only)');
  for (const line of verdictTimeline(result)) lines.push(`    ${line}`);
  if (reportPath !== undefined) lines.push('', `  Report: ${reportPath}`);
  lines.push(`  Logs:   ${result.runDirectory}`, '');
  return lines.join('\n');
}

/** The summary as JSON (`--json`). */
export function summaryJson(result: DemoResult, reportPath: string | undefined): Record<string, unknown> {
  const rollout = (value: RolloutSummary) => ({
    version: value.version,
    outcome: value.outcome,
    reasonCode: value.reasonCode,
    reason: value.reason,
    decisionMs: value.decisionMs,
    decidedAtWeight: value.decidedAtWeight,
    requests: value.requests,
    failed: value.failed,
    canaryFailed: value.canaryFailed,
    verdicts: value.answers.map((answer) => ({
      at: new Date(answer.at).toISOString(),
      weight: answer.weight,
      gate: answer.gate,
      verdict: answer.verdict,
      reasonCode: answer.reasonCode,
      samples: answer.samples,
      reason: answer.reason,
      test: answer.test,
    })),
  });
  return {
    ok: result.expectations.every((expectation) => expectation.ok),
    durationMs: result.finishedAt - result.startedAt,
    rate: result.rate,
    totals: result.totals,
    services: result.services,
    notices: result.notices,
    v2: rollout(result.v2),
    v3: rollout(result.v3),
    contract: {
      whileOldAlive: { outcome: result.contract.whileOldAlive.outcome, message: result.contract.whileOldAlive.message },
      afterOldGone: { outcome: result.contract.afterOldGone.outcome, message: result.contract.afterOldGone.message },
    },
    rotations: result.rotations,
    kafkaMessages: result.kafkaMessages,
    expectations: result.expectations,
    report: reportPath ?? null,
    logs: result.runDirectory,
  };
}
