// Turns whatever node-vault or the transport rejected with into a SecretsError with a kind: node-vault does not
// export its error classes, so errors are recognised by shape (reference/vault.md §3.3).
import { SecretsError, isSecretsError } from './errors.ts';
import { responseMeta } from './transport.ts';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

const LEASE_TERMINAL = /lease not found|lease expired|lease is not renewable|invalid lease|past the max TTL/i;
const INVALID_TOKEN = /invalid token|missing client token|bad token|token expired/i;

/** The messages Vault put in `{"errors": [...]}`. */
function vaultMessages(body: unknown): string[] {
  if (body === null || typeof body !== 'object') return [];
  const errors = (body as { errors?: unknown }).errors;
  return Array.isArray(errors) ? errors.filter((item): item is string => typeof item === 'string') : [];
}

/** Vault's multi-error text (`1 error occurred:\n\t* permission denied\n\n`) folded onto one line. */
function oneLine(messages: readonly string[]): string {
  const text = messages
    .join('; ')
    .replace(/\d+ errors? occurred:/g, '')
    .replace(/\s*\n\t\*\s*/g, '; ')
    .replace(/\s+/g, ' ')
    .replace(/^[;\s]+|[;\s]+$/g, '');
  return text === '' ? 'no error message' : text;
}

/**
 * Classifies a failed Vault call.
 * @internal
 */
export function classifyVaultError(error: unknown, operation: string, path: string): SecretsError {
  if (isSecretsError(error)) return error;
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  if (response !== undefined && typeof response.statusCode === 'number') {
    const status = response.statusCode;
    const messages = vaultMessages(response.body);
    const text = oneLine(messages);
    const retryAfterMs = responseMeta(response.body)?.retryAfterMs;
    const where = `Vault ${operation} (${path}) answered ${status}: ${text}`;
    const base = { cause: error, status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    if (status === 412 || status === 429 || status >= 500) {
      return new SecretsError('GANTRY_SECRETS_VAULT_UNAVAILABLE', where, { ...base, kind: 'retryable' });
    }
    if (status === 403 || (status === 400 && /missing client token/i.test(text))) {
      if (INVALID_TOKEN.test(text))
        return new SecretsError('GANTRY_SECRETS_AUTH_FAILED', where, { ...base, kind: 'auth' });
      return new SecretsError('GANTRY_SECRETS_PERMISSION_DENIED', where, { ...base, kind: 'fatal' });
    }
    if (status === 400 && LEASE_TERMINAL.test(text)) {
      return new SecretsError('GANTRY_SECRETS_LEASE_INVALID', where, { ...base, kind: 'lease-terminal' });
    }
    if (status === 404) return new SecretsError('GANTRY_SECRETS_NOT_FOUND', where, { ...base, kind: 'fatal' });
    return new SecretsError('GANTRY_SECRETS_VAULT_REQUEST_FAILED', where, { ...base, kind: 'fatal' });
  }
  const code = (error as { code?: unknown } | null)?.code;
  const causeCode = ((error as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code;
  const networkCode = [code, causeCode].find(
    (item): item is string => typeof item === 'string' && NETWORK_CODES.has(item),
  );
  if (networkCode !== undefined || /socket hang up/i.test(error instanceof Error ? error.message : '')) {
    return new SecretsError(
      'GANTRY_SECRETS_VAULT_UNAVAILABLE',
      `Vault ${operation} (${path}) failed: ${networkCode ?? 'socket hang up'}`,
      { cause: error, kind: 'retryable' },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SecretsError('GANTRY_SECRETS_VAULT_REQUEST_FAILED', `Vault ${operation} (${path}) failed: ${message}`, {
    cause: error,
    kind: 'fatal',
  });
}
