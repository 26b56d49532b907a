import { describe, expect, it } from 'vitest';
import { MONTH_END_FREEZE, createCalendar, instantToWall, wallToInstant } from './calendar.ts';
import { isAgentError } from './errors.ts';

describe('freeze calendars', () => {
  it('puts the month-end freeze on Berlin wall time in winter and summer (DST-safe)', () => {
    const calendar = createCalendar([MONTH_END_FREEZE]);
    const january = calendar.occurrences(Date.parse('2026-01-15T00:00:00Z'), Date.parse('2026-02-15T00:00:00Z'));
    expect(january.map((item) => [new Date(item.start).toISOString(), new Date(item.end).toISOString()])).toEqual([
      ['2026-01-30T17:00:00.000Z', '2026-02-02T05:00:00.000Z'],
    ]);
    const june = calendar.occurrences(Date.parse('2026-06-15T00:00:00Z'), Date.parse('2026-07-15T00:00:00Z'));
    // CEST = UTC+2: 18:00 local is 16:00 UTC; June has 30 days, so the second-to-last day is the 29th.
    expect(new Date(june[0]!.start).toISOString()).toBe('2026-06-29T16:00:00.000Z');
    // February 2026 has 28 days.
    const february = calendar.occurrences(Date.parse('2026-02-15T00:00:00Z'), Date.parse('2026-03-15T00:00:00Z'));
    expect(new Date(february[0]!.start).toISOString()).toBe('2026-02-27T17:00:00.000Z');
  });

  it('answers what is active now and ignores windows of other tenants', () => {
    const calendar = createCalendar([
      MONTH_END_FREEZE,
      {
        name: 'acme-peak',
        kind: 'maintenance',
        timeZone: 'America/New_York',
        rrule: 'FREQ=WEEKLY;BYDAY=SA;BYHOUR=0;BYMINUTE=0;BYSECOND=0',
        duration: '6h',
        tenants: ['acme'],
      },
    ]);
    const saturday = Date.parse('2026-03-07T07:00:00Z'); // 02:00 in New York
    expect(calendar.activeAt(saturday, 'globex').map((item) => item.name)).toEqual([]);
    expect(calendar.activeAt(saturday, 'acme').map((item) => item.name)).toEqual(['acme-peak']);
    expect(calendar.activeAt(Date.parse('2026-01-31T12:00:00Z')).map((item) => item.name)).toEqual([
      'finance-month-end',
    ]);
  });

  it('honours DTSTART;TZID and a DST gap', () => {
    const calendar = createCalendar([
      { name: 'nightly', rrule: 'DTSTART;TZID=Europe/Berlin:20260101T023000\nRRULE:FREQ=DAILY', duration: '30m' },
    ]);
    const occurrences = calendar.occurrences(Date.parse('2026-03-28T00:00:00Z'), Date.parse('2026-03-30T00:00:00Z'));
    // 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 → 03:00): it lands after the gap.
    expect(occurrences.map((item) => new Date(item.start).toISOString())).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:30:00.000Z',
    ]);
    expect(wallToInstant(instantToWall(Date.parse('2026-07-01T10:00:00Z'), 'Europe/Berlin'), 'Europe/Berlin')).toBe(
      Date.parse('2026-07-01T10:00:00Z'),
    );
  });

  it('rejects bad rules, zones and durations naming the field', () => {
    const attempt = (window: object) => {
      try {
        createCalendar([window as never]);
      } catch (error) {
        return isAgentError(error) ? error.field : 'other';
      }
      return 'none';
    };
    expect(attempt({ name: 'x', rrule: 'FREQ=SOMETIMES', duration: '1h' })).toBe('calendars[0].rrule');
    expect(attempt({ name: 'x', rrule: 'FREQ=DAILY', duration: '1h', timeZone: 'Mars/Olympus' })).toBe(
      'calendars[0].timeZone',
    );
    expect(attempt({ name: 'x', rrule: 'FREQ=DAILY', duration: 'forever' })).toBe('calendars[0].duration');
    expect(attempt({ rrule: 'FREQ=DAILY', duration: '1h' })).toBe('calendars[0].name');
  });
});
