// The demo's HTML report: self-contained (inline SVG, no scripts, no external assets) so it opens anywhere and
// renders the same in a headless browser.
import type { Second, TimelineEvent } from './timeline.ts';

/** Everything the report shows. */
export interface ReportInput {
  readonly title: string;
  readonly startedAt: number;
  readonly seconds: readonly Second[];
  readonly events: readonly TimelineEvent[];
  /** Label/value pairs for the summary table. */
  readonly summary: readonly (readonly [string, string])[];
}

const WIDTH = 1100;
const HEIGHT = 170;
const MARGIN = { left: 60, right: 20, top: 18, bottom: 24 };
const VERDICT_COLOURS: Readonly<Record<string, string>> = {
  pass: '#1a7f37',
  fail: '#cf222e',
  pending: '#8c959f',
  inconclusive: '#bf8700',
  error: '#8250df',
};

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Scale {
  x(t: number): number;
  y(value: number): number;
  readonly maxT: number;
  readonly maxY: number;
}

function scale(maxT: number, maxY: number): Scale {
  const innerWidth = WIDTH - MARGIN.left - MARGIN.right;
  const innerHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  return {
    maxT,
    maxY,
    x: (t) => MARGIN.left + (maxT === 0 ? 0 : (t / maxT) * innerWidth),
    y: (value) => MARGIN.top + innerHeight - (maxY === 0 ? 0 : (Math.min(value, maxY) / maxY) * innerHeight),
  };
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}

function axes(s: Scale, unit: string): string {
  const lines: string[] = [];
  for (let i = 0; i <= 4; i += 1) {
    const value = (s.maxY / 4) * i;
    const y = s.y(value);
    lines.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}" stroke="#eaeef2"/>`,
      `<text x="${MARGIN.left - 6}" y="${y + 4}" text-anchor="end" class="tick">${Number(value.toFixed(2))}${unit}</text>`,
    );
  }
  const step = Math.max(10, niceMax(s.maxT / 10));
  for (let t = 0; t <= s.maxT; t += step) {
    lines.push(`<text x="${s.x(t)}" y="${HEIGHT - 6}" text-anchor="middle" class="tick">${t}s</text>`);
  }
  return lines.join('');
}

/** Width of one character of an 11 px phase label, generously (the report has no layout engine). */
const LABEL_CHAR_PX = 6.5;

function phaseBands(s: Scale, input: ReportInput): string {
  const phases = input.events.filter((event) => event.kind === 'phase');
  // A label that would run into the previous one is left out (short phases); its band stays.
  let labelsEnd = Number.NEGATIVE_INFINITY;
  return phases
    .map((phase, index) => {
      const from = (phase.at - input.startedAt) / 1000;
      const next = phases[index + 1];
      const to = next === undefined ? s.maxT : (next.at - input.startedAt) / 1000;
      const fill = index % 2 === 0 ? '#f6f8fa' : '#ffffff';
      const x = s.x(from) + 4;
      let label = '';
      if (x >= labelsEnd) {
        label = `<text x="${x}" y="${MARGIN.top - 5}" class="phase">${escape(phase.text)}</text>`;
        labelsEnd = x + phase.text.length * LABEL_CHAR_PX + 8;
      }
      return (
        `<rect x="${s.x(from)}" y="${MARGIN.top}" width="${Math.max(0, s.x(to) - s.x(from))}" ` +
        `height="${HEIGHT - MARGIN.top - MARGIN.bottom}" fill="${fill}"/>` +
        label
      );
    })
    .join('');
}

function lineChart(
  input: ReportInput,
  title: string,
  unit: string,
  value: (second: Second) => number,
  colour: string,
): string {
  const maxT = Math.max(1, input.seconds.length - 1);
  const s = scale(maxT, niceMax(Math.max(0, ...input.seconds.map(value))));
  const points = input.seconds
    .map((second) => `${s.x(second.t).toFixed(1)},${s.y(value(second)).toFixed(1)}`)
    .join(' ');
  return (
    `<figure><figcaption>${escape(title)}</figcaption>` +
    `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escape(title)}">` +
    phaseBands(s, input) +
    axes(s, unit) +
    `<polyline fill="none" stroke="${colour}" stroke-width="1.6" points="${points}"/>` +
    `</svg></figure>`
  );
}

function verdictChart(input: ReportInput): string {
  const maxT = Math.max(1, input.seconds.length - 1);
  const s = scale(maxT, 1);
  const verdicts = input.events.filter((event) => event.kind === 'verdict' && event.verdict !== undefined);
  const decisions = input.events.filter((event) => ['promote', 'rollback', 'contract'].includes(event.kind));
  const marks = verdicts
    .map((event) => {
      const x = s.x((event.at - input.startedAt) / 1000);
      const colour = VERDICT_COLOURS[event.verdict ?? ''] ?? '#57606a';
      return `<circle cx="${x.toFixed(1)}" cy="${HEIGHT / 2}" r="5" fill="${colour}"><title>${escape(event.text)}</title></circle>`;
    })
    .join('');
  const labels = decisions
    .map((event) => {
      const x = s.x((event.at - input.startedAt) / 1000);
      const colour =
        event.kind === 'rollback'
          ? VERDICT_COLOURS['fail']
          : event.kind === 'promote'
            ? VERDICT_COLOURS['pass']
            : '#0969da';
      return (
        `<line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="${colour}" stroke-dasharray="4 3"/>` +
        `<text x="${x + 4}" y="${HEIGHT - MARGIN.bottom - 6}" class="decision" fill="${colour}">${escape(event.kind)}</text>`
      );
    })
    .join('');
  const legend = Object.entries(VERDICT_COLOURS)
    .map(([verdict, colour]) => `<span class="legend"><i style="background:${colour}"></i>${verdict}</span>`)
    .join('');
  return (
    `<figure><figcaption>Gate verdicts (agent /gate/v1/analysis) and decisions ${legend}</figcaption>` +
    `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="verdicts">` +
    phaseBands(s, input) +
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT / 2}" y2="${HEIGHT / 2}" stroke="#d0d7de"/>` +
    labels +
    marks +
    `</svg></figure>`
  );
}

/** Renders the report as one HTML document. */
export function renderReport(input: ReportInput): string {
  const rows = input.summary
    .map(([label, value]) => `<tr><th>${escape(label)}</th><td>${escape(value)}</td></tr>`)
    .join('');
  const events = input.events
    .map((event) => {
      const t = ((event.at - input.startedAt) / 1000).toFixed(1);
      return `<tr><td>${t}s</td><td>${escape(event.kind)}</td><td>${escape(event.text)}</td></tr>`;
    })
    .join('');
  const errorRate = (second: Second): number => (second.requests === 0 ? 0 : (second.failed / second.requests) * 100);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(input.title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;max-width:${WIDTH + 20}px}
h1{font-size:22px;margin:0 0 12px} figure{margin:14px 0} figcaption{font-weight:600;margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px} th,td{text-align:left;padding:3px 12px 3px 0;vertical-align:top}
th{color:#57606a;font-weight:500} .tick{font-size:10px;fill:#57606a} .phase{font-size:11px;fill:#57606a}
.decision{font-size:11px;font-weight:600} .legend{font-weight:400;margin-left:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
.events td{font-size:12px;border-top:1px solid #eaeef2}
</style></head><body>
<h1>${escape(input.title)}</h1>
<table>${rows}</table>
${lineChart(input, 'Failed requests, % per second (5xx and dropped)', '%', errorRate, '#cf222e')}
${lineChart(input, 'Latency p99 per second', ' ms', (second) => second.p99Ms, '#0969da')}
${lineChart(input, 'Canary traffic weight', '%', (second) => second.canaryWeight, '#8250df')}
${verdictChart(input)}
<h2>Timeline</h2>
<table class="events"><tr><th>time</th><th>event</th><th>detail</th></tr>${events}</table>
</body></html>
`;
}
