import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_ERROR_CODES, AgentError, isAgentError } from './errors.ts';

describe('error codes', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const source = readFileSync(join(import.meta.dirname, 'errors.ts'), 'utf8');

  it('documents every code of errors.ts in the README, and nothing else', () => {
    const inSource = new Set(source.match(/GANTRY_AGENT_[A-Z_]+/g));
    const section = readme.slice(
      readme.indexOf('## Error codes'),
      readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1),
    );
    const inReadme = new Set(section.match(/GANTRY_AGENT_[A-Z_]+/g));
    expect([...inSource].sort()).toEqual([...AGENT_ERROR_CODES].sort());
    expect([...inReadme].sort()).toEqual([...inSource].sort());
  });

  it('keeps the cause and recognises its errors', () => {
    const cause = new Error('root');
    const error = new AgentError('GANTRY_AGENT_LISTEN', 'port taken', { cause });
    expect(error.cause).toBe(cause);
    expect(isAgentError(error)).toBe(true);
    expect(isAgentError(new Error('x'))).toBe(false);
  });
});
