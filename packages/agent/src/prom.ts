// prom-client's metric classes without its index: the index also loads the default-metrics collectors, the
// Pushgateway (https, zlib) and @opentelemetry/api, which cost a sidecar ~20 MB of RSS for nothing it uses. The
// classes and the global registry are the very same objects the index exports (one CommonJS module cache).
import type * as PromClient from 'prom-client';
import counterModule from 'prom-client/lib/counter.js';
import gaugeModule from 'prom-client/lib/gauge.js';
import histogramModule from 'prom-client/lib/histogram.js';
import registryModule from 'prom-client/lib/registry.js';

/** prom-client's `Counter`. */
export const Counter = counterModule as typeof PromClient.Counter;
/** prom-client's `Gauge`. */
export const Gauge = gaugeModule as typeof PromClient.Gauge;
/** prom-client's `Histogram`. */
export const Histogram = histogramModule as typeof PromClient.Histogram;
/** prom-client's `Registry`. */
export const Registry = registryModule as typeof PromClient.Registry;
/** prom-client's global registry (the `register` export of 'prom-client'). */
export const globalRegistry = (registryModule as { globalRegistry: PromClient.Registry }).globalRegistry;
