import Fastify from 'fastify';
import { confineToLoopback } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl, requireScopes, routeScopes } from '../src/auth.js';
import { checkExposure, DEFAULT_RATE_LIMIT, isLoopback, parseOrigins, readGatewaySecurity } from '../src/settings.js';

const KEY = `ts_abcdefghijkl_${'A'.repeat(43)}`;

// Addresses beyond this machine appear here as strings to classify. Should the code under test
// ever try to reach one, the connect or lookup is refused before anything leaves this machine.
let restoreNetwork: () => void;
beforeAll(() => {
  restoreNetwork = confineToLoopback();
});
afterAll(() => restoreNetwork());

describe('route scopes', () => {
  it('refuses to register a route without a scope, but for the exemptions', async () => {
    const app = Fastify();
    requireScopes(app);
    app.get('/healthz', async () => 'ok');
    app.get('/api/v1/flows', { config: { scope: 'read' } }, async () => []);
    expect(() => app.post('/api/v1/flows', async () => 'oops')).toThrow('route POST /api/v1/flows declares no scope; give it config.scope (read, submit, admin), or list it in EXEMPT_ROUTES with the reason');
    expect(() => app.get('/api/v1/x', { config: { scope: 'root' as 'read' } }, async () => 'oops')).toThrow('route GET /api/v1/x declares an unknown scope');
    await app.ready();
    expect(routeScopes(app).map((r) => `${r.method} ${r.url} ${r.scope}`)).toEqual(['GET /healthz undefined', 'HEAD /healthz undefined', 'GET /api/v1/flows read', 'HEAD /api/v1/flows read']);
    await app.close();
  });
});

describe('log redaction', () => {
  it('blanks out the value of every token parameter', () => {
    expect(redactUrl(`/api/v1/feed?token=${KEY}&after=3`)).toBe('/api/v1/feed?token=[redacted]&after=3');
    expect(redactUrl(`/api/v1/feed?after=3&TOKEN=${KEY}`)).toBe('/api/v1/feed?after=3&TOKEN=[redacted]');
    expect(redactUrl(`/api/v1/feed?token=${KEY}&token=${KEY}#x`)).toBe('/api/v1/feed?token=[redacted]&token=[redacted]#x');
    expect(redactUrl('/api/v1/flows?notoken=1')).toBe('/api/v1/flows?notoken=1');
  });
});

describe('gateway security settings', () => {
  it('requires keys unless told otherwise, and reads the other settings', () => {
    expect(readGatewaySecurity({})).toEqual({ auth: 'keys', allowUnauthenticated: false, rateLimit: DEFAULT_RATE_LIMIT, corsOrigins: [] });
    expect(
      readGatewaySecurity({
        TASKSTREAM_AUTH: 'none',
        TASKSTREAM_ALLOW_UNAUTHENTICATED: 'true',
        TASKSTREAM_BOOTSTRAP_ADMIN_KEY: KEY,
        TASKSTREAM_RATE_LIMIT: '0',
        TASKSTREAM_CORS_ORIGINS: 'https://a.example.com, http://localhost:3000',
      }),
    ).toEqual({ auth: 'none', allowUnauthenticated: true, bootstrapAdminKey: KEY, rateLimit: 0, corsOrigins: ['https://a.example.com', 'http://localhost:3000'] });
  });

  it('names a wrong setting without quoting a key', () => {
    expect(() => readGatewaySecurity({ TASKSTREAM_AUTH: 'off' })).toThrow('TASKSTREAM_AUTH must be "keys" (API keys required, the default) or "none", not "off"');
    expect(() => readGatewaySecurity({ TASKSTREAM_RATE_LIMIT: 'fast' })).toThrow('TASKSTREAM_RATE_LIMIT must be a whole number');
    expect(() => readGatewaySecurity({ TASKSTREAM_ALLOW_UNAUTHENTICATED: 'maybe' })).toThrow('TASKSTREAM_ALLOW_UNAUTHENTICATED must be true or false');
    let message = '';
    try {
      readGatewaySecurity({ TASKSTREAM_BOOTSTRAP_ADMIN_KEY: `${KEY.slice(0, 20)}!` });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^TASKSTREAM_BOOTSTRAP_ADMIN_KEY is not an API key/);
    expect(message).not.toContain('AAAA');
  });

  it('takes origins only as scheme, host and port', () => {
    expect(parseOrigins('')).toEqual([]);
    expect(parseOrigins(' , ')).toEqual([]);
    for (const bad of ['*', 'https://a.example.com/', 'https://a.example.com/app', 'a.example.com', 'ftp://a.example.com', 'https://A.example.com']) {
      expect(() => parseOrigins(bad), bad).toThrow(/^TASKSTREAM_CORS_ORIGINS must list origins/);
    }
  });

  it('tells loopback addresses from others', () => {
    for (const host of ['127.0.0.1', '127.8.9.1', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', 'example.com', '']) expect(isLoopback(host), host).toBe(false);
  });

  it('refuses to serve beyond loopback without keys unless allowed', () => {
    expect(() => checkExposure('0.0.0.0', 'none', false)).toThrow(/^refusing to listen on 0\.0\.0\.0 without authentication/);
    expect(() => checkExposure('0.0.0.0', 'none', true)).not.toThrow();
    expect(() => checkExposure('0.0.0.0', 'keys', false)).not.toThrow();
    expect(() => checkExposure('127.0.0.1', 'none', false)).not.toThrow();
  });
});
