// A parser for the Prometheus text exposition format (0.0.4) and the OpenMetrics text subset that matters here:
// `name{label="value",...} value [timestamp]`, comments, escapes. It keeps only the series the caller asks for, so
// a large /q/metrics page costs one pass and little memory.
import { AgentError } from './errors.ts';

/** One sample line: metric name, labels and value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function parseValue(text: string): number {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
      return Number.NaN;
    default: {
      const value = Number(text);
      return text.length > 0 && !Number.isNaN(value) ? value : Number.NaN;
    }
  }
}

/**
 * Parses the samples of exposition text whose metric name passes `keep`.
 * @throws AgentError `GANTRY_AGENT_METRICS_PARSE` naming the line when a kept line is malformed.
 * @example parseExposition(text, (name) => name.startsWith('http_server_'))
 */
export function parseExposition(text: string, keep: (name: string) => boolean = () => true): Sample[] {
  const samples: Sample[] = [];
  let lineNumber = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    lineNumber += 1;
    if (line.length === 0 || line.startsWith('#')) continue;
    let index = 0;
    while (index < line.length && line[index] !== '{' && line[index] !== ' ' && line[index] !== '\t') index += 1;
    const name = line.slice(0, index);
    if (!keep(name)) continue;
    const labels: Record<string, string> = {};
    if (line[index] === '{') {
      index += 1;
      for (;;) {
        while (line[index] === ' ' || line[index] === ',') index += 1;
        if (line[index] === '}') {
          index += 1;
          break;
        }
        const equals = line.indexOf('=', index);
        if (equals === -1 || line[equals + 1] !== '"') throw malformed(lineNumber, line);
        const key = line.slice(index, equals).trim();
        index = equals + 2;
        let value = '';
        for (;;) {
          const char = line[index];
          if (char === undefined) throw malformed(lineNumber, line);
          if (char === '\\') {
            const next = line[index + 1];
            value += next === 'n' ? '\n' : (next ?? '');
            index += 2;
          } else if (char === '"') {
            index += 1;
            break;
          } else {
            value += char;
            index += 1;
          }
        }
        labels[key] = value;
      }
    }
    const rest = line.slice(index).trim().split(/\s+/);
    const value = parseValue(rest[0] ?? '');
    if (Number.isNaN(value) && rest[0] !== 'NaN') throw malformed(lineNumber, line);
    samples.push({ name, labels, value });
  }
  return samples;
}

function malformed(lineNumber: number, line: string): AgentError {
  return new AgentError(
    'GANTRY_AGENT_METRICS_PARSE',
    `Malformed exposition line ${lineNumber}: ${JSON.stringify(line.slice(0, 120))}`,
  );
}
