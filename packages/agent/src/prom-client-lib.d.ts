// Declarations for the prom-client files imported directly (see prom.ts); their shapes come from prom-client's own
// types through the casts there.
declare module 'prom-client/lib/counter.js' {
  const value: unknown;
  export default value;
}
declare module 'prom-client/lib/gauge.js' {
  const value: unknown;
  export default value;
}
declare module 'prom-client/lib/histogram.js' {
  const value: unknown;
  export default value;
}
declare module 'prom-client/lib/registry.js' {
  const value: unknown;
  export default value;
}
