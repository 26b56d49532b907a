// Live progress of the demo. On a terminal: log lines scroll above one status line that is redrawn four times a
// second (traffic, failures, canary weight, the last verdict). Elsewhere (CI logs, pipes): plain timestamped
// lines, the status once every ten seconds, no control characters.
import type { GateAnswer } from './controller.ts';
import type { Run } from './run.ts';

/** The demo's terminal output. */
export interface Progress {
  phase(text: string): void;
  line(text: string): void;
  answer(version: string, answer: GateAnswer): void;
  /** Starts the status line for a run. */
  attach(run: Run): void;
  /** Stops redrawing and clears the status line. */
  stop(): void;
}

const elapsed = (since: number): string => {
  const seconds = Math.max(0, Math.round((Date.now() - since) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
};

/**
 * Creates the progress output on `stream` (TTY-aware unless `tty` says otherwise).
 * @example const progress = createProgress(process.stderr); progress.phase('Starting');
 */
export function createProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  options: { readonly tty?: boolean; readonly color?: boolean } = {},
): Progress {
  const tty = options.tty ?? stream.isTTY === true;
  const color = (options.color ?? tty) && process.env['NO_COLOR'] === undefined;
  const paint = (code: string, text: string): string => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const startedAt = Date.now();
  let run: Run | undefined;
  let timer: NodeJS.Timeout | undefined;
  let statusShown = false;
  let lastAnswer: { version: string; answer: GateAnswer } | undefined;
  const lastVerdicts = new Map<string, string>();

  const status = (): string => {
    if (run === undefined) return '';
    const seconds = run.timeline.seconds();
    const recent = seconds.at(-2) ?? seconds.at(-1);
    const totals = run.timeline.totals;
    const rotation = run.proxy.inRotation();
    const weight = run.proxy.canaryWeight;
    const verdict =
      lastAnswer === undefined
        ? ''
        : ` │ ${lastAnswer.version} ${lastAnswer.answer.gate}@${lastAnswer.answer.weight}%: ${lastAnswer.answer.verdict} ${lastAnswer.answer.reasonCode} n=${lastAnswer.answer.samples}`;
    const failed = totals.failed === 0 ? paint('32', 'failed 0') : paint('31', `failed ${totals.failed}`);
    return (
      `  ${elapsed(startedAt)} │ ${recent?.requests ?? 0} req/s │ ${totals.requests} requests │ ${failed} │ ` +
      `pods ${rotation.stable.length}+${rotation.canary.length} │ canary ${weight}%${verdict}`
    );
  };
  const clear = (): void => {
    if (tty && statusShown) stream.write('\r\u001b[2K');
    statusShown = false;
  };
  const draw = (): void => {
    if (!tty || run === undefined) return;
    const text = status();
    const width = stream.columns ?? 120;
    stream.write(`\r\u001b[2K${text.length > width + 20 ? text.slice(0, width + 19) : text}`);
    statusShown = true;
  };
  const write = (text: string): void => {
    clear();
    stream.write(tty ? `${text}\n` : `[${elapsed(startedAt)}] ${text}\n`);
    draw();
  };

  return {
    phase: (text) => write(paint('1', `▸ ${text}`)),
    line: (text) => write(`  ${text}`),
    answer(version, answer) {
      lastAnswer = { version, answer };
      const key = `${version} ${answer.gate}@${answer.weight}`;
      const summary = `${answer.verdict} ${answer.reasonCode}`;
      if (lastVerdicts.get(key) !== summary) {
        lastVerdicts.set(key, summary);
        const colour = answer.verdict === 'pass' ? '32' : answer.verdict === 'fail' ? '31' : '33';
        write(
          `  verdict ${version} ${answer.gate}@${answer.weight}%: ${paint(colour, summary)} — ${answer.reason.slice(0, 150)}`,
        );
      } else {
        draw();
      }
    },
    attach(next) {
      run = next;
      clearInterval(timer);
      timer = setInterval(() => (tty ? draw() : write(status().replace(/^\s*\d+:\d+ │ /, ''))), tty ? 250 : 10_000);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      clear();
      run = undefined;
    },
  };
}
