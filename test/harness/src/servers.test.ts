import { describe, expect, it } from 'vitest';
import { parseServerList, SERVER_NAMES } from './servers.ts';

describe('parseServerList', () => {
  it('defaults to every server', () => {
    expect(parseServerList(undefined)).toEqual([...SERVER_NAMES]);
    expect(parseServerList('all')).toEqual([...SERVER_NAMES]);
  });

  it('adds postgres when unleash is asked for, since Unleash stores its data there', () => {
    expect(parseServerList('unleash')).toEqual(['unleash', 'postgres']);
  });

  it('names an unknown server', () => {
    expect(() => parseServerList('postgres,redis')).toThrow(/Unknown server "redis"/);
  });

  it('accepts none', () => {
    expect(parseServerList('none')).toEqual([]);
  });
});
