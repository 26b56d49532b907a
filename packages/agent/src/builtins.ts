// Node built-ins and rrule fetched when first needed. An ESM `import ... from 'node:crypto'` builds the module's
// namespace and so evaluates its lazy getters (webcrypto and friends); process.getBuiltinModule returns the plain
// exports object. Together with a lazy rrule this keeps the sidecar's resident memory down by several MB.
import type * as Crypto from 'node:crypto';
import type * as Rrule from 'rrule';

/** node:crypto without an ESM namespace. */
export function nodeCrypto(): typeof Crypto {
  return process.getBuiltinModule('node:crypto');
}

type RruleModule = typeof Rrule;
let rrule: RruleModule | undefined;

/** The rrule package, loaded on first use (only agents with calendars need it). */
export function rruleModule(): RruleModule {
  if (rrule === undefined) {
    const { createRequire } = process.getBuiltinModule('node:module');
    // import.meta.url works in the sources, the ESM build and (shimmed by tsup) the CommonJS build; a bare
    // `require` would become the bundler's throwing stub in ESM.
    rrule = createRequire(import.meta.url)('rrule') as RruleModule;
  }
  return rrule;
}
