import { describe, expect, it } from 'vitest';
import { parseExposition } from './exposition.ts';
import { histogramQuantile, subtractTotals, totalsFromExposition, totalsFromJson } from './totals.ts';

const PAGE = `# HELP http_server_request_duration_seconds Duration of HTTP server requests.
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{le="0.005",http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 10
http_server_request_duration_seconds_bucket{le="0.01",http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 60
http_server_request_duration_seconds_bucket{le="0.1",http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 90
http_server_request_duration_seconds_bucket{le="+Inf",http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 95
http_server_request_duration_seconds_sum{http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 2.5
http_server_request_duration_seconds_count{http_request_method="GET",http_route="/orders/:id",http_response_status_code="200"} 95
http_server_request_duration_seconds_bucket{le="0.005",http_request_method="POST",http_route="/orders",http_response_status_code="503"} 0
http_server_request_duration_seconds_bucket{le="0.01",http_request_method="POST",http_route="/orders",http_response_status_code="503"} 0
http_server_request_duration_seconds_bucket{le="0.1",http_request_method="POST",http_route="/orders",http_response_status_code="503"} 5
http_server_request_duration_seconds_bucket{le="+Inf",http_request_method="POST",http_route="/orders",http_response_status_code="503"} 5
http_server_request_duration_seconds_count{http_request_method="POST",http_route="/orders",http_response_status_code="503"} 5
http_server_request_duration_seconds_sum{http_request_method="POST",http_route="/orders",http_response_status_code="503"} 0.25
http_server_request_duration_seconds_count{http_request_method="GET",http_route="/x",http_response_status_code="404"} 3 1700000000000
http_server_request_duration_seconds_bucket{le="+Inf",http_request_method="GET",http_route="/x",http_response_status_code="404"} 3
other_metric{path="a \\"quoted\\" \\\\ value\\n"} 1
`;

describe('exposition parsing', () => {
  it('reads labels with escapes, timestamps and special values', () => {
    const samples = parseExposition(`${PAGE}up NaN\nx_total +Inf\n`);
    expect(samples.find((sample) => sample.name === 'other_metric')!.labels['path']).toBe('a "quoted" \\ value\n');
    expect(samples.find((sample) => sample.name === 'x_total')!.value).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(samples.find((sample) => sample.name === 'up')!.value)).toBe(true);
  });

  it('names the line of a malformed sample', () => {
    expect(() => parseExposition('ok 1\nbroken{le="1" 2\n')).toThrow(/line 2/);
    expect(() => parseExposition('value_without_number abc\n')).toThrow(/GANTRY|Malformed/);
  });
});

describe('HTTP request totals', () => {
  it('sums counts by status class from _count and the buckets of every series', () => {
    const totals = totalsFromExposition(PAGE);
    expect(totals.requests).toBe(103);
    expect(totals.errors).toBe(5);
    expect(totals.byClass).toMatchObject({ '2xx': 95, '4xx': 3, '5xx': 5 });
    expect(totals.bounds).toEqual([0.005, 0.01, 0.1]);
    // 10 + 50 + (30 + 5) + (5 + 3 only in +Inf)
    expect(totals.counts).toEqual([10, 50, 35, 8]);
    expect(totals.sum).toBeCloseTo(2.75);
  });

  it('copes with any bucket layout, including series with fewer buckets', () => {
    const text = [
      'h_bucket{le="1",c="200"} 4',
      'h_bucket{le="+Inf",c="200"} 4',
      'h_count{c="200"} 4',
      'h_bucket{le="0.5",c="201"} 1',
      'h_bucket{le="2",c="201"} 2',
      'h_bucket{le="+Inf",c="201"} 2',
      'h_count{c="201"} 2',
    ].join('\n');
    const totals = totalsFromExposition(text, 'h');
    expect(totals.bounds).toEqual([0.5, 1, 2]);
    expect(totals.counts.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('interpolates quantiles inside buckets like histogram_quantile', () => {
    const totals = totalsFromExposition(PAGE);
    expect(histogramQuantile(totals, 0.5)).toBeCloseTo(0.005 + 0.005 * ((51.5 - 10) / 50));
    expect(histogramQuantile(totals, 0.99)).toBe(0.1);
  });

  it('treats a counter that went down as a restart (the new value counts from zero)', () => {
    const before = totalsFromExposition(PAGE);
    const after = totalsFromExposition(
      PAGE.replaceAll(' 95\n', ' 2\n')
        .replaceAll(' 90\n', ' 2\n')
        .replaceAll(' 60\n', ' 1\n')
        .replaceAll(' 10\n', ' 1\n'),
    );
    expect(subtractTotals(after, before)).toBe(after);
    expect(subtractTotals(before, before).requests).toBe(0);
  });

  it('rejects summaries whose totals have the wrong shape', () => {
    expect(
      totalsFromJson({ requests: 1, errors: 0, byClass: {}, bounds: [1], counts: [1, 0], sum: 0 }),
    ).toBeUndefined();
    expect(totalsFromJson({ requests: -1 })).toBeUndefined();
    expect(totalsFromJson(null)).toBeUndefined();
  });
});
