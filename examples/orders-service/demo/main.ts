#!/usr/bin/env node
// `./gantry demo`: a progressive rollout of the orders service on this machine — see scenario.ts for the story.
// Exits 0 when every expectation held (v2 promoted with no failed request, v3 rolled back, contract refused then
// applied), 1 when one did not or the demo could not run, 2 on bad usage.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createRunDirectory } from '@gantry/test-harness';
import { DEMO_PROFILE, FAST_PROFILE } from './profiles.ts';
import { createProgress } from './progress.ts';
import { renderReport } from './report.ts';
import { runDemo } from './scenario.ts';
import { findChromium, screenshotReport } from './screenshot.ts';
import { formatSummary, summaryJson, summaryRows } from './summary.ts';

// kafkajs 2.2.4 arms a timer with a negative delay (its request queue starts at `throttledUntil = -1`), which Node
// 24 reports as a TimeoutNegativeWarning when the demo counts the Kafka messages. Harmless: hide that one warning.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const REPOSITORY_ROOT = resolve(import.meta.dirname, '..', '..', '..');

const HELP = `Usage: ./gantry demo [options]

A progressive rollout of a real service on this machine: two v1 pods of examples/orders-service with their
gantry-agent sidecars behind a weighted proxy under open-loop load; an expand migration and a backfill while they
serve; a good canary v2 walked 10 → 25 → 50 → 100 % and promoted; \`contract\` refused while v1 pods live and applied
once they are gone; a bad canary v3 (5 % errors, slower p95) caught and rolled back. PostgreSQL always; Kafka,
Unleash and Vault (dev server) when available. Takes about three minutes.

Options:
      --fast            50 requests/s and 5 s steps (about two minutes)
      --rate <n>        requests per second (default 20)
      --json            print the summary as JSON on stdout (progress stays on stderr)
      --report-dir <d>  where the HTML report goes (default reports/demo)
      --no-kafka        do not start Kafka (no order events, no agent CloudEvents)
      --no-unleash      do not start Unleash (flags offline from flags-bootstrap.json)
      --no-vault        no Vault: a plain pool with a static role instead of rotating credentials
      --no-screenshot   do not render the report in headless Chromium
  -h, --help            this help

Exit codes: 0 every expectation met, 1 an expectation failed or the demo could not run, 2 bad usage.`;

async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        fast: { type: 'boolean' },
        rate: { type: 'string' },
        json: { type: 'boolean' },
        'report-dir': { type: 'string' },
        'no-kafka': { type: 'boolean' },
        'no-unleash': { type: 'boolean' },
        'no-vault': { type: 'boolean' },
        'no-screenshot': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (args.help === true) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  let profile = args.fast === true ? FAST_PROFILE : DEMO_PROFILE;
  if (args.rate !== undefined) {
    const rate = Number(args.rate);
    if (!Number.isFinite(rate) || rate < 5 || rate > 500) {
      process.stderr.write(`Expected \`--rate\` to be a number from 5 to 500, got ${JSON.stringify(args.rate)}\n`);
      return 2;
    }
    profile = { ...profile, rate };
  }
  const reportDirectory = resolve(args['report-dir'] ?? join(REPOSITORY_ROOT, 'reports', 'demo'));
  mkdirSync(reportDirectory, { recursive: true });
  const progress = createProgress(process.stderr);
  const runDirectory = createRunDirectory('demo');
  let result;
  try {
    result = await runDemo({
      profile,
      runDirectory,
      kafka: args['no-kafka'] !== true,
      unleash: args['no-unleash'] !== true,
      vault: args['no-vault'] !== true,
      onPhase: (text) => progress.phase(text),
      onLine: (text) => progress.line(text),
      onAnswer: (version, answer) => progress.answer(version, answer),
      onRun: (run) => progress.attach(run),
    });
  } catch (error) {
    progress.stop();
    process.stderr.write(
      `\nThe demo could not run: ${(error as Error).stack ?? String(error)}\nLogs: ${runDirectory}\n`,
    );
    return 1;
  }
  progress.stop();

  const htmlPath = join(reportDirectory, 'index.html');
  writeFileSync(
    htmlPath,
    renderReport({
      title: 'Gantry demo — progressive rollout of orders-service',
      startedAt: result.timeline.startedAt,
      seconds: result.timeline.seconds(),
      events: result.timeline.events,
      summary: summaryRows(result),
    }),
  );
  const shownPath = relative(process.cwd(), htmlPath) || htmlPath;
  if (args['no-screenshot'] !== true) {
    const chromium = findChromium();
    if ('missing' in chromium) {
      process.stderr.write(`notice: no screenshot of the report: ${chromium.missing}\n`);
    } else {
      try {
        const shot = await screenshotReport(htmlPath, join(reportDirectory, 'report.png'));
        process.stderr.write(
          `report rendered in headless Chromium: ${shot.charts} charts, ${relative(process.cwd(), shot.path)}\n`,
        );
      } catch (error) {
        process.stderr.write(`notice: the report screenshot failed: ${(error as Error).message.split('\n')[0]}\n`);
      }
    }
  }
  const json = summaryJson(result, htmlPath);
  writeFileSync(join(reportDirectory, 'summary.json'), `${JSON.stringify(json, null, 2)}\n`);
  const text = formatSummary(result, shownPath);
  writeFileSync(join(reportDirectory, 'summary.txt'), `${text}\n`);
  if (args.json === true) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else process.stdout.write(`${text}\n`);
  return result.expectations.every((expectation) => expectation.ok) ? 0 : 1;
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything the demo started is closed by now; should a handle still hold the event loop, do not hang.
setTimeout(() => process.exit(code), 5_000).unref();
