// Freeze and maintenance windows from RFC 5545 recurrence rules in a time zone. rrule expands the rule in wall-clock
// time ("the last day of every month at 18:00") with no time zone attached (floating dates), and we turn each wall
// time into an instant for the window's zone with Intl, so DST changes and the host's own zone cannot shift a
// window (rrule's TZID support depends on the host zone).
import { rruleModule } from './builtins.ts';
import { formatDuration, parseDurationMs } from './duration.ts';
import { AgentError } from './errors.ts';

/** What a window means for rollouts: both block; the reason code differs. */
export type CalendarKind = 'freeze' | 'maintenance';

/** One recurring window as configured. */
export interface CalendarWindowOptions {
  /** Shown in reasons and audit entries, e.g. `finance-month-end`. */
  readonly name: string;
  /** @default 'freeze' */
  readonly kind?: CalendarKind;
  /** IANA zone the rule's wall times are in. A `DTSTART;TZID=...` in the rule wins. @default 'UTC' */
  readonly timeZone?: string;
  /** RFC 5545 text: `DTSTART:20260101T180000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1`, or just the `FREQ=...` part. */
  readonly rrule: string;
  /** Length of each occurrence: `38h`, `PT38H` or seconds. */
  readonly duration: string | number;
  /** Tenants the window applies to; absent = every tenant. */
  readonly tenants?: readonly string[];
  /** Free text for humans (why this window exists). */
  readonly description?: string;
}

/**
 * The seed's month-end financial freeze: from 18:00 (Europe/Berlin) on the second-to-last day of each month until
 * 06:00 on the 2nd — books close, no rollouts.
 */
export const MONTH_END_FREEZE: CalendarWindowOptions = Object.freeze({
  name: 'finance-month-end',
  kind: 'freeze',
  timeZone: 'Europe/Berlin',
  rrule: 'DTSTART:20260101T180000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-2',
  duration: '60h',
  description: 'Month-end financial close: no rollouts from the second-to-last day 18:00 until the 2nd 06:00.',
});

/** One concrete occurrence of a window. */
export interface WindowOccurrence {
  readonly name: string;
  readonly kind: CalendarKind;
  readonly start: number;
  readonly end: number;
  readonly description: string | undefined;
}

interface CompiledWindow {
  readonly options: CalendarWindowOptions;
  readonly kind: CalendarKind;
  readonly timeZone: string;
  readonly durationMs: number;
  readonly rule: { between(after: Date, before: Date, inc?: boolean): Date[] };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let value = formatters.get(timeZone);
  if (value === undefined) {
    value = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, value);
  }
  return value;
}

/**
 * Wall-clock time (as UTC fields) of an instant in a zone.
 * @example instantToWall(Date.parse('2026-07-01T10:00:00Z'), 'Europe/Berlin') // Date.UTC(2026, 6, 1, 12)
 */
export function instantToWall(instant: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return (
    Date.UTC(
      parts['year'] ?? 1970,
      (parts['month'] ?? 1) - 1,
      parts['day'] ?? 1,
      parts['hour'] ?? 0,
      parts['minute'] ?? 0,
      parts['second'] ?? 0,
    ) +
    (((instant % 1_000) + 1_000) % 1_000)
  );
}

/**
 * The instant at which a zone's clocks show `wall` (UTC fields). In a DST gap the clock time after the gap.
 * @example wallToInstant(Date.UTC(2026, 6, 1, 12), 'Europe/Berlin') // Date.parse('2026-07-01T10:00:00Z')
 */
export function wallToInstant(wall: number, timeZone: string): number {
  const offset = (instant: number): number => instantToWall(instant, timeZone) - instant;
  const first = wall - offset(wall);
  const second = wall - offset(first);
  return offset(second) === offset(first) ? second : Math.max(first, second);
}

function isTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

function compile(options: CalendarWindowOptions, index: number): CompiledWindow {
  const field = `calendars[${index}]`;
  if (typeof options !== 'object' || options === null) {
    throw new AgentError('GANTRY_AGENT_INVALID_CALENDAR', `Expected \`${field}\` to be an object`, { field });
  }
  if (typeof options.name !== 'string' || options.name.length === 0) {
    throw new AgentError('GANTRY_AGENT_INVALID_CALENDAR', `Expected \`${field}.name\` to be a non-empty string`, {
      field: `${field}.name`,
    });
  }
  const kind = options.kind ?? 'freeze';
  if (kind !== 'freeze' && kind !== 'maintenance') {
    throw new AgentError(
      'GANTRY_AGENT_INVALID_CALENDAR',
      `Expected \`${field}.kind\` to be "freeze" or "maintenance"`,
      {
        field: `${field}.kind`,
      },
    );
  }
  const durationMs = parseDurationMs(options.duration);
  if (durationMs === undefined || durationMs <= 0) {
    throw new AgentError(
      'GANTRY_AGENT_INVALID_CALENDAR',
      `Expected \`${field}.duration\` to be a duration such as "38h", got ${JSON.stringify(options.duration)}`,
      { field: `${field}.duration` },
    );
  }
  if (typeof options.rrule !== 'string' || options.rrule.trim().length === 0) {
    throw new AgentError('GANTRY_AGENT_INVALID_CALENDAR', `Expected \`${field}.rrule\` to be RFC 5545 text`, {
      field: `${field}.rrule`,
    });
  }
  let text = options.rrule.trim().replace(/\\n/g, '\n');
  let timeZone = options.timeZone ?? 'UTC';
  const tzid = /DTSTART;TZID=([^:;\n]+):/i.exec(text);
  if (tzid?.[1] !== undefined) {
    timeZone = tzid[1];
    text = text.replace(/DTSTART;TZID=[^:;\n]+:/i, 'DTSTART:');
  }
  if (/DTSTART:\d{8}T\d{6}Z/i.test(text)) {
    timeZone = 'UTC';
    text = text.replace(/(DTSTART:\d{8}T\d{6})Z/i, '$1');
  }
  if (!/^(DTSTART|RRULE)/im.test(text)) text = `DTSTART:20000101T000000\nRRULE:${text}`;
  else if (!/DTSTART/i.test(text)) text = `DTSTART:20000101T000000\n${text}`;
  if (!isTimeZone(timeZone)) {
    throw new AgentError(
      'GANTRY_AGENT_INVALID_CALENDAR',
      `Unknown time zone ${JSON.stringify(timeZone)} in \`${field}\``,
      {
        field: `${field}.timeZone`,
      },
    );
  }
  let rule: CompiledWindow['rule'];
  try {
    rule = rruleModule().rrulestr(text);
    rule.between(new Date(Date.UTC(2026, 0, 1)), new Date(Date.UTC(2026, 0, 2)), true);
  } catch (error) {
    throw new AgentError(
      'GANTRY_AGENT_INVALID_CALENDAR',
      `Invalid recurrence rule in \`${field}.rrule\`: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error, field: `${field}.rrule` },
    );
  }
  return { options, kind, timeZone, durationMs, rule };
}

/** Compiled calendar windows: which are active now, which a rollout of a given length would run into. */
export interface Calendar {
  readonly windows: readonly CalendarWindowOptions[];
  /** Occurrences overlapping [from, to) for `tenant` (all tenants' windows when undefined), earliest first. */
  occurrences(from: number, to: number, tenant?: string): WindowOccurrence[];
  /** Occurrences active at `at`. */
  activeAt(at: number, tenant?: string): WindowOccurrence[];
}

/** The longest window length we look back over when asking what is active (bounds rrule's work). */
const MAX_LOOKAHEAD_MS = 31 * 86_400_000;

/**
 * Compiles calendar windows.
 * @throws AgentError `GANTRY_AGENT_INVALID_CALENDAR` naming the window field.
 * @example
 * const calendar = createCalendar([MONTH_END_FREEZE]);
 * calendar.activeAt(Date.parse('2026-01-31T12:00:00Z')); // [{ name: 'finance-month-end', ... }]
 */
export function createCalendar(windows: readonly CalendarWindowOptions[]): Calendar {
  const compiled = windows.map(compile);
  const occurrences = (from: number, to: number, tenant?: string): WindowOccurrence[] => {
    const found: WindowOccurrence[] = [];
    const limitedTo = Math.min(to, from + MAX_LOOKAHEAD_MS);
    for (const window of compiled) {
      const tenants = window.options.tenants;
      if (tenant !== undefined && tenants !== undefined && tenants.length > 0 && !tenants.includes(tenant)) continue;
      // Wall times, with a day of margin either side for zone offsets.
      const wallFrom = instantToWall(from, window.timeZone) - window.durationMs - 86_400_000;
      const wallTo = instantToWall(limitedTo, window.timeZone) + 86_400_000;
      for (const date of window.rule.between(new Date(wallFrom), new Date(wallTo), true)) {
        const start = wallToInstant(date.getTime(), window.timeZone);
        const end = start + window.durationMs;
        if (start < limitedTo && end > from) {
          found.push({
            name: window.options.name,
            kind: window.kind,
            start,
            end,
            description: window.options.description,
          });
        }
      }
    }
    return found.sort((a, b) => a.start - b.start);
  };
  return {
    windows: Object.freeze([...windows]),
    occurrences,
    activeAt: (at, tenant) => occurrences(at, at + 1, tenant),
  };
}

/** A one-line description of an occurrence for reasons. */
export function describeOccurrence(occurrence: WindowOccurrence, now: number): string {
  const when =
    occurrence.start <= now
      ? `until ${new Date(occurrence.end).toISOString()} (${formatDuration(occurrence.end - now)} left)`
      : `from ${new Date(occurrence.start).toISOString()} (in ${formatDuration(occurrence.start - now)})`;
  return `${occurrence.kind} window ${occurrence.name} ${when}`;
}
