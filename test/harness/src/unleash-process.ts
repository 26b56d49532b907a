// Child-process entry that runs a real Unleash server for the harness (`node unleash-process.ts`).
// Configuration arrives in GANTRY_UNLEASH_CONFIG (JSON); once listening, the chosen port is written to the
// file named there, which is how the harness learns it without racing for a free port.
import { writeFileSync } from 'node:fs';
import * as unleash from 'unleash-server';

interface ChildConfig {
  readonly database: {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: string;
    readonly database: string;
  };
  readonly port: number;
  readonly portFile: string;
  readonly adminToken: string;
  readonly backendTokens: readonly string[];
  readonly frontendToken: string;
}

const raw = process.env['GANTRY_UNLEASH_CONFIG'];
if (raw === undefined) {
  console.error('GANTRY_UNLEASH_CONFIG is not set');
  process.exit(2);
}
const config = JSON.parse(raw) as ChildConfig;

type TokenType = 'admin' | 'backend' | 'frontend';

function token(secret: string, type: TokenType): unleash.IApiTokenCreate {
  const [project = '*', rest = '*'] = secret.split(':');
  const [environment = '*'] = rest.split('.');
  return {
    secret,
    type: type as unleash.IApiTokenCreate['type'],
    environment,
    projects: [project],
    tokenName: `harness-${type}`,
  };
}

const instance = await unleash.start({
  db: { ...config.database, ssl: false, pool: { min: 0, max: 6 } },
  server: { port: config.port, host: '127.0.0.1', gracefulShutdownEnable: true },
  authentication: {
    initApiTokens: [
      token(config.adminToken, 'admin'),
      ...config.backendTokens.map((secret) => token(secret, 'backend')),
      token(config.frontendToken, 'frontend'),
    ],
  },
  versionCheck: { enable: false },
  logLevel: unleash.LogLevel.warn,
});

const address = instance.server?.address();
const port = typeof address === 'object' && address !== null ? address.port : config.port;
writeFileSync(config.portFile, String(port));
