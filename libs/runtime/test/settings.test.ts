import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@taskstream/nats';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMON_SETTINGS, createContext, heapGrowthOption, layeredEnv, readCommonEnv, readNatsAuth, SettingError } from '../src/index.js';

const PASSWORD = 'pa55-never-shown';

describe('the settings every service shares', () => {
  it('are read through their declarations: every default as declared, NATS access none', () => {
    expect(readCommonEnv({})).toEqual({ natsUrl: 'nats://127.0.0.1:4222', prefix: 'ts', replicas: 1, logLevel: 'info', heapGrowthPercent: 0, natsAsyncTraces: false, natsAuth: {}, provision: true });
    expect(readCommonEnv({ TASKSTREAM_REPLICAS: '3', TASKSTREAM_PROVISION: 'off', TASKSTREAM_NATS_ASYNC_TRACES: 'yes', TASKSTREAM_PREFIX: '' })).toMatchObject({ replicas: 3, provision: false, natsAsyncTraces: true, prefix: 'ts' });
  });

  it('refuse an invalid value with a SettingError naming the variable', () => {
    const read = (env: NodeJS.ProcessEnv) => () => readCommonEnv(env);
    expect(read({ TASKSTREAM_REPLICAS: '0' })).toThrow(new SettingError('TASKSTREAM_REPLICAS', 'TASKSTREAM_REPLICAS must be at least 1, not "0"'));
    expect(read({ TASKSTREAM_PROVISION: 'maybe' })).toThrow('TASKSTREAM_PROVISION must be true or false, not "maybe"');
    expect(read({ TASKSTREAM_LOG_LEVEL: 'loud' })).toThrow(/^TASKSTREAM_LOG_LEVEL must be fatal, error/);
    expect(read({ TASKSTREAM_PREFIX: 'a.b' })).toThrow(SettingError);
    expect(read({ TASKSTREAM_HEAP_GROWTH_PERCENT: '-1' })).toThrow('TASKSTREAM_HEAP_GROWTH_PERCENT must be at least 0, not "-1"');
    expect(read({ TASKSTREAM_HEAP_GROWTH_PERCENT: '301' })).toThrow('TASKSTREAM_HEAP_GROWTH_PERCENT must be at most 300, not "301"');
    expect(read({ TASKSTREAM_HEAP_GROWTH_PERCENT: 'lots' })).toThrow('TASKSTREAM_HEAP_GROWTH_PERCENT must be a whole number, not "lots"');
  });
});

describe('the heap growth a service runs with', () => {
  it("is V8's heap-growing-percent option with the setting's value", () => {
    expect(heapGrowthOption(25, [])).toBe('--heap-growing-percent=25');
    expect(heapGrowthOption(300, ['--expose-gc'])).toBe('--heap-growing-percent=300');
    expect(readCommonEnv({ TASKSTREAM_HEAP_GROWTH_PERCENT: '60' }).heapGrowthPercent).toBe(60);
  });

  it("is left to V8 at 0, and to the operator's own option on node's command line (in either spelling)", () => {
    expect(heapGrowthOption(0, [])).toBeUndefined();
    expect(heapGrowthOption(25, ['--heap-growing-percent=80'])).toBeUndefined();
    expect(heapGrowthOption(25, ['--heap_growing_percent=80'])).toBeUndefined();
    expect(heapGrowthOption(25, ['--heap-growing-percent', '80'])).toBeUndefined();
  });
});

describe('NATS user, password and credentials file', () => {
  it('are a user and password, a credentials file, or nothing', () => {
    expect(readNatsAuth({})).toEqual({});
    expect(readNatsAuth({ TASKSTREAM_NATS_USER: 'planner', TASKSTREAM_NATS_PASSWORD: PASSWORD })).toEqual({ user: 'planner', password: PASSWORD });
    expect(readNatsAuth({ TASKSTREAM_NATS_USER: 'planner' })).toEqual({ user: 'planner', password: '' });
    expect(readNatsAuth({ TASKSTREAM_NATS_CREDS: '/etc/taskstream/planner.creds', TASKSTREAM_NATS_USER: '' })).toEqual({ credsFile: '/etc/taskstream/planner.creds' });
  });

  it('refuse a credentials file beside a user or password, naming both, and never quote the password', () => {
    const both = (env: NodeJS.ProcessEnv) => {
      try {
        readNatsAuth(env);
      } catch (error) {
        return error as SettingError;
      }
      throw new Error('accepted');
    };
    const withUser = both({ TASKSTREAM_NATS_CREDS: 'a.creds', TASKSTREAM_NATS_USER: 'planner', TASKSTREAM_NATS_PASSWORD: PASSWORD });
    expect(withUser).toBeInstanceOf(SettingError);
    expect(withUser.message).toBe(
      'TASKSTREAM_NATS_CREDS and TASKSTREAM_NATS_USER and TASKSTREAM_NATS_PASSWORD are both set: a NATS connection authenticates with a credentials file or with a user and password, not both; unset one',
    );
    expect(both({ TASKSTREAM_NATS_CREDS: 'a.creds', TASKSTREAM_NATS_PASSWORD: PASSWORD }).message).toMatch(/^TASKSTREAM_NATS_CREDS and TASKSTREAM_NATS_PASSWORD are both set/);
    expect(both({ TASKSTREAM_NATS_PASSWORD: PASSWORD }).message).toBe('TASKSTREAM_NATS_PASSWORD is set but TASKSTREAM_NATS_USER is not: set the NATS user too');
    expect(withUser.message).not.toContain(PASSWORD);
  });

  it('are common settings, so every service and `taskstream <service>` reads them; only the file has a flag', () => {
    expect(COMMON_SETTINGS).toMatchObject({ natsUser: { env: 'TASKSTREAM_NATS_USER' }, natsPassword: { env: 'TASKSTREAM_NATS_PASSWORD' }, natsCreds: { env: 'TASKSTREAM_NATS_CREDS', flag: '--nats-creds <file>' } });
    expect(COMMON_SETTINGS.natsPassword).not.toHaveProperty('flag');
  });

  describe('a credentials file that cannot be used stops the start naming the setting and the path, before connecting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskstream-creds-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // Nothing listens on port 1: reaching the connection would fail differently.
    const start = (credsFile: string) => createContext({ natsUrl: 'nats://127.0.0.1:1', name: 'creds-test', log: silentLogger, env: { TASKSTREAM_NATS_CREDS: credsFile } });

    it('one that is missing, or a directory', async () => {
      const missing = join(dir, 'missing.creds');
      await expect(start(missing)).rejects.toThrow(new SettingError('TASKSTREAM_NATS_CREDS', `TASKSTREAM_NATS_CREDS names ${missing}, which cannot be read (no such file)`));
      await expect(start(dir)).rejects.toThrow(`TASKSTREAM_NATS_CREDS names ${dir}, which cannot be read (EISDIR`);
    });

    it('one that holds no user JWT and seed', async () => {
      const wrong = join(dir, 'wrong.creds');
      writeFileSync(wrong, 'user = "planner"\npassword = "x"\n');
      await expect(start(wrong)).rejects.toThrow(`TASKSTREAM_NATS_CREDS names ${wrong}, which is not a NATS credentials file`);
    });
  });
});

describe('layeredEnv', () => {
  const S = { leaseMs: { env: 'TASKSTREAM_LEASE_MS', default: '10000', help: '', schema: COMMON_SETTINGS.replicas.schema }, queue: { env: 'TASKSTREAM_QUEUE', default: 'default', help: '', schema: COMMON_SETTINGS.prefix.schema } };

  it('puts defaults under the environment and overrides over it, by setting name', () => {
    expect(layeredEnv(S, { OTHER: 'x' }, { defaults: { leaseMs: '500' }, overrides: { queue: '*' } })).toEqual({ OTHER: 'x', TASKSTREAM_LEASE_MS: '500', TASKSTREAM_QUEUE: '*' });
    expect(layeredEnv(S, { TASKSTREAM_LEASE_MS: '700', TASKSTREAM_QUEUE: 'ci' }, { defaults: { leaseMs: '500' }, overrides: { queue: '*' } })).toEqual({ TASKSTREAM_LEASE_MS: '700', TASKSTREAM_QUEUE: '*' });
  });

  it('treats an empty variable as unset, as readSettings does, and leaves settings given no value alone', () => {
    expect(layeredEnv(S, { TASKSTREAM_LEASE_MS: '' }, { defaults: { leaseMs: '500' } })).toEqual({ TASKSTREAM_LEASE_MS: '500' });
    expect(layeredEnv(S, { TASKSTREAM_QUEUE: 'ci' }, { overrides: { queue: undefined } })).toEqual({ TASKSTREAM_QUEUE: 'ci' });
  });
});

describe('unknown TASKSTREAM_* variables', () => {
  it('refuses a misspelt setting, naming it and the closest known one', () => {
    expect(() => readCommonEnv({ TASKSTREAM_ACK_WAIT: '5000' })).toThrow(/^TASKSTREAM_ACK_WAIT is not a Taskstream setting \(did you mean TASKSTREAM_ACK_WAIT_MS\?\)/);
    expect(() => readCommonEnv({ TASKSTREAM_CONCURENCY: '4' })).toThrow(/did you mean TASKSTREAM_CONCURRENCY\?/);
  });
  it('accepts every variable it knows, and leaves alone names far from any (a queue secret may live in one)', () => {
    expect(() => readCommonEnv({ TASKSTREAM_ACK_WAIT_MS: '5000', TASKSTREAM_URL: 'http://127.0.0.1:8080', TASKSTREAM_FLOW_ID: 'x', PATH: '/bin', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).not.toThrow();
    expect(() => readCommonEnv({ TASKSTREAM_DEPLOY_TOKEN: 'secret' })).not.toThrow();
  });
});
