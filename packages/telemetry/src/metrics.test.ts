import { describe, expect, it } from 'vitest';
import { HttpServerDurationMetric, normaliseMethod, OVERFLOW_LABEL_VALUE } from './http-metrics.ts';
import { acceptsOpenMetrics, formatMetrics } from './metrics.ts';

describe('HttpServerDurationMetric', () => {
  it('writes cumulative buckets in seconds with sum and count, and exemplars of sampled requests', () => {
    const metric = new HttpServerDurationMetric({
      buckets: [0.01, 0.1, 1],
      maxSeries: 10,
      tenantLabel: false,
      onOverflow: () => {},
    });
    metric.record('GET', '/a', 200, 0.005);
    metric.record('GET', '/a', 200, 0.05, '0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331');
    metric.record('GET', '/a', 200, 5);
    metric.record('PROPFIND', '/a', 200, 0.5);
    const text = formatMetrics([metric.get()], true);
    expect(text).toContain(
      'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a",http_response_status_code="200",le="0.01"} 1\n',
    );
    expect(text).toContain(
      'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a",http_response_status_code="200",le="0.1"} 2 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"} 0.05 ',
    );
    expect(text).toContain('le="+Inf"} 3\n');
    expect(text).toContain(
      'http_server_request_duration_seconds_sum{http_request_method="GET",http_route="/a",http_response_status_code="200"} 5.055',
    );
    expect(text).toContain('http_server_request_duration_seconds_count{http_request_method="_OTHER"');
    expect(text.endsWith('# EOF\n')).toBe(true);
    // No exemplars in the Prometheus text format.
    expect(formatMetrics([metric.get()], false)).not.toContain('trace_id');
  });

  it('collapses routes past the cap into one overflow series per method and status', () => {
    let overflows = 0;
    const metric = new HttpServerDurationMetric({
      buckets: [1],
      maxSeries: 2,
      tenantLabel: false,
      onOverflow: () => (overflows += 1),
    });
    for (const route of ['/a', '/b', '/c', '/d']) metric.record('GET', route, 200, 0.1);
    metric.record('GET', '/e', 500, 0.1);
    expect(metric.seriesCount).toBe(4);
    const routes = metric
      .get()
      .values.filter((value) => value.metricName?.endsWith('_count'))
      .map((value) => [value.labels['http_route'], value.value]);
    expect(routes).toEqual([
      ['/a', 1],
      ['/b', 1],
      [OVERFLOW_LABEL_VALUE, 2],
      [OVERFLOW_LABEL_VALUE, 1],
    ]);
    expect(overflows).toBe(3);
  });

  it('keeps methods, statuses and routes apart on repeated requests, and starts over after reset', () => {
    let overflows = 0;
    const metric = new HttpServerDurationMetric({
      buckets: [1],
      maxSeries: 5,
      tenantLabel: false,
      onOverflow: () => (overflows += 1),
    });
    const requests: [string, string, number][] = [
      ['GET', '/a', 200],
      ['POST', '/a', 200],
      ['GET', '/a', 500],
      ['get', '/a', 200],
      ['GET', '/b', 200],
      ['PROPFIND', '/a', 200],
      ['GET', '/c', 200],
    ];
    for (let round = 0; round < 3; round += 1) {
      for (const [method, route, status] of requests) metric.record(method, route, status, 0.1);
    }
    const counts = (): (string | number | undefined)[][] =>
      metric
        .get()
        .values.filter((value) => value.metricName?.endsWith('_count'))
        .map((value) => [
          value.labels['http_request_method'],
          value.labels['http_route'],
          value.labels['http_response_status_code'],
          value.value,
        ]);
    expect(counts()).toEqual([
      ['GET', '/a', '200', 6],
      ['POST', '/a', '200', 3],
      ['GET', '/a', '500', 3],
      ['GET', '/b', '200', 3],
      ['_OTHER', '/a', '200', 3],
      ['GET', OVERFLOW_LABEL_VALUE, '200', 3],
    ]);
    // Every request past the cap is counted as an overflow, not only the first.
    expect(overflows).toBe(3);
    metric.reset();
    metric.record('GET', '/a', 200, 0.1);
    expect(counts()).toEqual([['GET', '/a', '200', 1]]);
  });

  it('normalises methods per the OpenTelemetry conventions', () => {
    expect(normaliseMethod('get')).toBe('GET');
    expect(normaliseMethod('PATCH')).toBe('PATCH');
    expect(normaliseMethod('BREW')).toBe('_OTHER');
  });
});

describe('formatMetrics', () => {
  const counter = {
    name: 'jobs_total',
    help: 'Jobs "done".\nReally',
    type: 'counter',
    values: [{ labels: { kind: 'a\\b"c' }, value: 3 }],
  };
  it('writes counters the OpenMetrics way (family without _total) and escapes labels and help', () => {
    const text = formatMetrics([counter], true);
    expect(text).toBe(
      '# TYPE jobs counter\n# HELP jobs Jobs \\"done\\".\\nReally\njobs_total{kind="a\\\\b\\"c"} 3\n# EOF\n',
    );
  });
  it('writes the Prometheus text format unchanged', () => {
    expect(formatMetrics([counter], false)).toBe(
      '# HELP jobs_total Jobs "done".\\nReally\n# TYPE jobs_total counter\njobs_total{kind="a\\\\b\\"c"} 3\n',
    );
  });
  it('negotiates OpenMetrics only when it is preferred', () => {
    expect(acceptsOpenMetrics(undefined)).toBe(false);
    expect(acceptsOpenMetrics('text/plain')).toBe(false);
    expect(
      acceptsOpenMetrics('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'),
    ).toBe(true);
    expect(acceptsOpenMetrics('application/openmetrics-text;q=0.2,text/plain')).toBe(false);
  });
});
