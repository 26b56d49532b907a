// A span around a piece of work, sync or async: exceptions recorded, status set, the span always ended.
import { type Attributes, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { TRACER_NAME } from './tracing.ts';

function fail(span: Span, error: unknown): void {
  const exception = error instanceof Error ? error : new Error(String(error));
  span.recordException(exception);
  span.setStatus({ code: SpanStatusCode.ERROR, message: exception.message });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Runs `fn` inside a new active span named `name`. A thrown error or rejected promise is recorded on the span,
 * its status set to ERROR, and the error rethrown; on success the status is OK. Works with tracing off (the span is
 * a no-op). Logs written inside carry the span's trace id.
 * @throws whatever `fn` throws.
 * @example
 * const total = await traceOperation('orders.price', { 'orders.count': items.length }, async (span) => {
 *   const price = await pricing.quote(items);
 *   span.setAttribute('orders.currency', price.currency);
 *   return price.total;
 * });
 */
export function traceOperation<T>(name: string, attributes: Attributes, fn: (span: Span) => T): T;
/** Same as above without attributes. */
export function traceOperation<T>(name: string, fn: (span: Span) => T): T;
export function traceOperation<T>(
  name: string,
  attributesOrFn: Attributes | ((span: Span) => T),
  maybeFn?: (span: Span) => T,
): T {
  const fn = typeof attributesOrFn === 'function' ? attributesOrFn : maybeFn;
  const attributes = typeof attributesOrFn === 'function' ? {} : attributesOrFn;
  if (typeof fn !== 'function') throw new TypeError('traceOperation needs a function to run');
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes }, (span) => {
    let result: T;
    try {
      result = fn(span);
    } catch (error) {
      fail(span, error);
      span.end();
      throw error;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => {
          span.setStatus({ code: SpanStatusCode.OK });
          span.end();
          return value;
        },
        (error: unknown) => {
          fail(span, error);
          span.end();
          throw error;
        },
      ) as T;
    }
    span.setStatus({ code: SpanStatusCode.OK });
    span.end();
    return result;
  });
}
