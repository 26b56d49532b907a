// Turns whatever a check threw into a short, single-line reason that is safe to serve on an unauthenticated
// probe: no stack, credentials in URLs and `password=` pairs masked, bounded length.

const MAX_REASON_LENGTH = 200;

/** Masks credentials a driver might echo in its message. */
export function redact(text: string): string {
  return text
    .replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1***@')
    .replace(/\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1$2***');
}

/** A one-line description of `error`: `Name: message` or the code, at most 200 characters. */
export function describeError(error: unknown): string {
  let text: string;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message.split('\n', 1)[0]?.trim() ?? '';
    const prefix = typeof code === 'string' && !message.includes(code) ? `${code}: ` : '';
    text = `${prefix}${message || error.name}`;
  } else if (typeof error === 'string') {
    text = error.split('\n', 1)[0] ?? '';
  } else {
    text = 'check failed';
  }
  const safe = redact(text);
  return safe.length > MAX_REASON_LENGTH ? `${safe.slice(0, MAX_REASON_LENGTH - 1)}…` : safe;
}
