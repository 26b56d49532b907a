// Node built-ins and rrule fetched when first needed. An ESM `import ... from 'node:crypto'` builds the module's
// namespace and so evaluates its lazy getters (webcrypto and friends); process.getBuiltinModule returns the plain
// exports object. Together with a lazy rrule this keeps the sidecar's resident memory down by several MB.
import type * as Crypto from 'node:crypto';

/** node:crypto without an ESM namespace. */
export function nodeCrypto(): typeof Crypto {
  return process.getBuiltinModule('node:crypto');
}

type RruleModule = typeof import('rrule');
let rrule: RruleModule | undefined;

/** The rrule package, loaded on first use (only agents with calendars need it). */
export function rruleModule(): RruleModule {
  if (rrule === undefined) {
    const { createRequire } = process.getBuiltinModule('node:module');
    // In the CommonJS build `require` exists; in ESM we build one from this module's URL.
    const load = typeof require === 'function' ? require : createRequire(import.meta.url);
    rrule = load('rrule') as RruleModule;
  }
  return rrule;
}
