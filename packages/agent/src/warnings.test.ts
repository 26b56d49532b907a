import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createJsonLogger } from './logger.ts';
import { routeProcessWarnings } from './warnings.ts';

describe('routeProcessWarnings', () => {
  it('logs process warnings as JSON lines and restores the previous listeners', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createJsonLogger({ level: 'debug', write: (line) => lines.push(JSON.parse(line) as never) });
    const before = process.listeners('warning');
    const restore = routeProcessWarnings(logger);
    try {
      expect(process.listeners('warning')).toHaveLength(1);

      const emitted = once(process, 'warning');
      process.emitWarning('the widget is deprecated', { type: 'DeprecationWarning', code: 'GANTRY_TEST_1' });
      await emitted;
      expect(lines.at(-1)).toMatchObject({
        level: 40,
        event: 'process.warning',
        name: 'DeprecationWarning',
        code: 'GANTRY_TEST_1',
        msg: 'the widget is deprecated',
      });

      // kafkajs's negative throttle timer: same warning Node raises, with kafkajs on the stack → debug.
      const known = new Error('-1796693593370 is a negative number.\nTimeout duration was set to 1.');
      known.name = 'TimeoutNegativeWarning';
      known.stack = `${known.name}: ${known.message}\n    at RequestQueue.scheduleCheckPendingRequests (/app/node_modules/kafkajs/src/network/requestQueue/index.js:317:37)`;
      const emittedKnown = once(process, 'warning');
      process.emitWarning(known);
      await emittedKnown;
      expect(lines.at(-1)).toMatchObject({ level: 20, event: 'process.warning', name: 'TimeoutNegativeWarning' });

      // The same warning from anywhere else is not hidden.
      const emittedOther = once(process, 'warning');
      process.emitWarning('-5 is a negative number.', 'TimeoutNegativeWarning');
      await emittedOther;
      expect(lines.at(-1)).toMatchObject({ level: 40, name: 'TimeoutNegativeWarning' });
    } finally {
      restore();
    }
    expect(process.listeners('warning')).toEqual(before);
  });
});
