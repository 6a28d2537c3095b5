import { isIP } from 'node:net';
import { parseApiKey } from '@taskstream/nats';
import { boolFrom, createLogger, intFrom, readCommonEnv, readSettings, runService, wholeSetting, type Settings } from '@taskstream/runtime';
import { z } from 'zod';
import { DEFAULT_BODY_LIMIT, type GatewayOptions } from './app.js';
import { serveGateway } from './serve.js';
import { DEFAULT_CLIENT_STALL_MS } from './stall.js';

/** Where the gateway listens and what it accepts; its protection is read by readGatewaySecurity below. */
export const GATEWAY_SETTINGS = {
  host: { env: 'TASKSTREAM_HOST', flag: '--host <host>', default: '127.0.0.1', help: 'address to listen on', schema: z.string().min(1, 'must name an address') },
  port: { env: 'TASKSTREAM_PORT', flag: '-p, --port <port>', default: '8080', help: 'port to listen on', schema: wholeSetting(0).max(65535, 'must be at most 65535') },
  bodyLimit: { env: 'TASKSTREAM_BODY_LIMIT', flag: '--body-limit <bytes>', default: String(DEFAULT_BODY_LIMIT), help: 'largest request body accepted, in bytes (a larger one is answered 413)', schema: wholeSetting(1) },
  clientStallSecs: {
    env: 'TASKSTREAM_CLIENT_STALL_SECS',
    flag: '--client-stall-secs <seconds>',
    default: String(DEFAULT_CLIENT_STALL_MS / 1000),
    help: 'how long a streaming client (a WebSocket feed told to resync, a Tasked event stream) may read nothing of what waits for it before it is dropped',
    schema: wholeSetting(1).max(86_400, 'must be at most 86400 (a day)'),
  },
} satisfies Settings;

/**
 * Everything a gateway's start checks before it connects: its settings, its protection and where
 * it may listen without keys. Throws the error naming the setting.
 */
export function checkGatewaySettings(env: NodeJS.ProcessEnv): void {
  readCommonEnv(env);
  const { host } = readSettings(GATEWAY_SETTINGS, env);
  const security = readGatewaySecurity(env);
  checkExposure(host, security.auth, security.allowUnauthenticated);
}

/** The gateway as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream gateway` both run this. */
export function runGatewayService(): Promise<void> {
  return runService('gateway', (ctx, env) => {
    const { host, port, bodyLimit, clientStallSecs } = readSettings(GATEWAY_SETTINGS, env);
    return serveGateway(ctx, { host, port, bodyLimit, clientStallMs: clientStallSecs * 1000, logger: createLogger('gateway', readCommonEnv(env).logLevel), env });
  });
}

/** Requests a second one key (or, without keys, one address) may make, unless TASKSTREAM_RATE_LIMIT says otherwise. */
export const DEFAULT_RATE_LIMIT = 100;

export type AuthMode = 'keys' | 'none';

/** How a deployed gateway (its main, `taskstream gateway`) is protected, read from the environment. */
export interface GatewaySecurity {
  auth: AuthMode;
  /** Whether it may listen on an address other than loopback with auth off. */
  allowUnauthenticated: boolean;
  bootstrapAdminKey?: string;
  /** Requests a second per key; 0 turns the limit off. */
  rateLimit: number;
  corsOrigins: string[];
}

/**
 * Reads TASKSTREAM_AUTH (`keys`, the default, or `none`), TASKSTREAM_ALLOW_UNAUTHENTICATED,
 * TASKSTREAM_BOOTSTRAP_ADMIN_KEY, TASKSTREAM_RATE_LIMIT and TASKSTREAM_CORS_ORIGINS. Errors name the
 * variable and never quote a key.
 */
export function readGatewaySecurity(env: NodeJS.ProcessEnv = process.env): GatewaySecurity {
  const auth = (env.TASKSTREAM_AUTH ?? '') === '' ? 'keys' : env.TASKSTREAM_AUTH!;
  if (auth !== 'keys' && auth !== 'none') throw new Error(`TASKSTREAM_AUTH must be "keys" (API keys required, the default) or "none", not ${JSON.stringify(auth.slice(0, 40))}`);
  const bootstrap = env.TASKSTREAM_BOOTSTRAP_ADMIN_KEY ?? '';
  if (bootstrap !== '' && !parseApiKey(bootstrap)) {
    throw new Error('TASKSTREAM_BOOTSTRAP_ADMIN_KEY is not an API key: it must look like ts_<12 characters a-z, 2-7>_<43 or more characters of base64url>; create one with `taskstream keys create`, or leave it unset');
  }
  return {
    auth,
    allowUnauthenticated: boolFrom(env, 'TASKSTREAM_ALLOW_UNAUTHENTICATED', false),
    ...(bootstrap !== '' && { bootstrapAdminKey: bootstrap }),
    rateLimit: intFrom(env, 'TASKSTREAM_RATE_LIMIT', DEFAULT_RATE_LIMIT),
    corsOrigins: parseOrigins(env.TASKSTREAM_CORS_ORIGINS ?? ''),
  };
}

/** `https://a.example, https://b.example:8443` as a list of origins; each must be scheme://host[:port]. */
export function parseOrigins(list: string): string[] {
  const origins = list
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new Error(`TASKSTREAM_CORS_ORIGINS must list origins such as https://app.example.com (scheme, host and port only, no path or trailing slash), not ${JSON.stringify(origin.slice(0, 100))}`);
    }
  }
  return origins;
}

/** Whether a listen address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) !== 6) return false;
  // The URL parser writes an IPv6 address in its shortest form: [::1], or [::ffff:7f00:1] for 127.0.0.1.
  const canonical = new URL(`http://[${bare}]`).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/**
 * Refuses to serve without keys where others can reach the gateway: with auth off, only a loopback
 * address, unless TASKSTREAM_ALLOW_UNAUTHENTICATED says it is meant (say, behind a proxy that
 * authenticates).
 */
export function checkExposure(host: string, auth: AuthMode, allowUnauthenticated: boolean): void {
  if (auth === 'none' && !allowUnauthenticated && !isLoopback(host)) {
    throw new Error(
      `refusing to listen on ${host} without authentication: anyone who can reach it could submit flows and read secrets' names. Use API keys (TASKSTREAM_AUTH=keys, the default), listen on 127.0.0.1, or set TASKSTREAM_ALLOW_UNAUTHENTICATED=true if something in front of the gateway authenticates`,
    );
  }
}

/** GatewayOptions for a deployed gateway's security settings. */
export function securityOptions(security: GatewaySecurity): Pick<GatewayOptions, 'auth' | 'bootstrapAdminKey' | 'rateLimit' | 'corsOrigins'> {
  return {
    auth: security.auth,
    ...(security.bootstrapAdminKey !== undefined && { bootstrapAdminKey: security.bootstrapAdminKey }),
    rateLimit: security.rateLimit,
    corsOrigins: security.corsOrigins,
  };
}
