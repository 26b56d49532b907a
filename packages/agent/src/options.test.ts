import { describe, expect, it } from 'vitest';
import { isAgentError } from './errors.ts';
import { agentOptionsFromEnv, mergeOptions, resolveAgentConfig } from './options.ts';

function fieldOf(options: Record<string, unknown>): string | undefined {
  try {
    resolveAgentConfig(options);
  } catch (error) {
    if (isAgentError(error)) return `${error.field}: ${error.message}`;
    throw error;
  }
  return undefined;
}

describe('agent options', () => {
  it('has working defaults and a frozen result', () => {
    const config = resolveAgentConfig();
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8686 });
    expect(config.app.url).toBe('http://127.0.0.1:8080');
    expect(config.policy.triggers).toMatchObject({
      errorRate: 0.01,
      errorRateForMs: 120_000,
      p95Ms: 2_000,
      healthFailures: 5,
    });
    expect(Object.keys(config.policy.gates)).toEqual([
      'slo',
      'compare',
      'smoke',
      'freeze',
      'schema',
      'start',
      'promotion',
      'rollback',
    ]);
    expect(Object.isFrozen(config.policy.slo)).toBe(true);
    expect(() => {
      (config as { intervalMs: number }).intervalMs = 1;
    }).toThrow(TypeError);
  });

  it('names the option, what was expected and what was received', () => {
    expect(fieldOf({ intervalMs: 'soon' })).toBe(
      'intervalMs: Expected `intervalMs` to be milliseconds or a duration such as "5s" (≥ 100 ms), got "soon"',
    );
    expect(fieldOf({ policy: { slo: { maxErrorRate: 1.5 } } })).toMatch(
      /^policy\.slo\.maxErrorRate: Expected .* between 0 and 1, got 1\.5/,
    );
    expect(fieldOf({ fleet: { peers: ['not a url'] } })).toMatch(/^fleet\.peers\[0\]/);
    expect(fieldOf({ policy: { gates: { Bad_Name: { checks: ['slo'] } } } })).toMatch(/^policy\.gates\.Bad_Name/);
    expect(fieldOf({ policy: { gates: { canary: { checks: ['slo', 'astrology'] } } } })).toMatch(
      /^policy\.gates\.canary\.checks/,
    );
    expect(fieldOf({ fleet: { kafka: true } })).toMatch(/^kafka\.brokers/);
    expect(fieldOf({ apps: {} })).toMatch(/^apps: Unknown option `apps`/);
  });

  it('never echoes a token in a validation message', () => {
    const message = fieldOf({ auth: { token: 'short secret' } });
    expect(message).toMatch(/^auth\.token/);
    expect(message).not.toContain('short secret');
  });

  it('reads GANTRY_AGENT_* variables and layers them', () => {
    const env = agentOptionsFromEnv({
      GANTRY_AGENT_PORT: '9000',
      GANTRY_AGENT_PEERS: 'http://a:8686, http://b:8686',
      GANTRY_AGENT_PEERS_DNS: 'orders-agents:8687',
      GANTRY_AGENT_KAFKA_BROKERS: 'k1:9092,k2:9092',
      GANTRY_AGENT_FLEET_KAFKA: 'true',
    });
    const config = resolveAgentConfig(mergeOptions({ listen: { host: '127.0.0.1', port: 1 } }, env));
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(config.fleet.peers).toEqual(['http://a:8686', 'http://b:8686']);
    expect(config.fleet.dns).toEqual({ name: 'orders-agents', port: 8687, protocol: 'http' });
    expect(config.kafka?.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(config.fleet.kafkaTopic).toBe('gantry.fleet');
    expect(() => agentOptionsFromEnv({ GANTRY_AGENT_FLEET_KAFKA: 'maybe' })).toThrow(/GANTRY_AGENT_FLEET_KAFKA/);
  });
});
