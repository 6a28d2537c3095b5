import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { startStack, type Stack } from '@taskstream/cli';
import { silentLogger } from '@taskstream/nats';
import { createContext, readCommonEnv, SettingError } from '@taskstream/runtime';
import { ConfiguredNats, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

/**
 * NATS authentication through the shared settings (TASKSTREAM_NATS_USER and _PASSWORD, or
 * TASKSTREAM_NATS_CREDS), on real nats-servers that refuse anything else: one with a user and
 * password, one in operator mode whose operator, accounts and user JWTs are made here with the
 * nkeys the NATS client ships, as `nsc` would make them.
 */

type KeyPair = ReturnType<typeof nkeys.createUser>;

const dir = mkdtempSync(join(tmpdir(), 'taskstream-nats-creds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A NATS JWT: `nats` claims about `subject`, signed by `issuer` (ed25519 over header.claims). */
function natsJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const unsigned = `${base64url({ typ: 'JWT', alg: 'ed25519-nkey' })}.${base64url({ jti: `${name}-${Date.now()}`, iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), sub: subject, name, nats: { ...nats, version: 2 } })}`;
  return `${unsigned}.${Buffer.from(issuer.sign(new TextEncoder().encode(unsigned))).toString('base64url')}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

/** A credentials file for a new user of `account`, written as `nsc generate creds` writes one. */
function credsFile(name: string, account: KeyPair): string {
  const user = nkeys.createUser();
  const jwt = natsJwt(account, user.getPublicKey(), name, { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });
  const file = join(dir, `${name}.creds`);
  const seed = new TextDecoder().decode(user.getSeed());
  writeFileSync(file, `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`, { mode: 0o600 });
  return file;
}

/** Server configuration of an operator with a system account and one JetStream account, resolved from memory. */
function operatorConfig(operator: KeyPair, account: KeyPair): string {
  const system = nkeys.createAccount();
  const accountJwt = (key: KeyPair, name: string, limits: Record<string, unknown>) => natsJwt(operator, key.getPublicKey(), name, { type: 'account', limits });
  const file = join(dir, 'operator.conf');
  writeFileSync(
    file,
    [
      `operator: ${natsJwt(operator, operator.getPublicKey(), 'taskstream-test', { type: 'operator' })}`,
      `system_account: ${system.getPublicKey()}`,
      'resolver: MEMORY',
      'resolver_preload: {',
      `  ${system.getPublicKey()}: ${accountJwt(system, 'SYS', UNLIMITED)}`,
      `  ${account.getPublicKey()}: ${accountJwt(account, 'taskstream', { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 })}`,
      '}',
      '',
    ].join('\n'),
  );
  return file;
}

/** Submits a two-task flow through the stack's gateway and waits for its outcome. */
async function runsAFlow(stack: Stack): Promise<string> {
  const flow = { name: 'authenticated', tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop', depends_on: ['a'] }] };
  const submitted = await stack.gateway.inject({ method: 'POST', url: '/api/v1/flows', payload: flow });
  expect(submitted.statusCode, submitted.body).toBe(202);
  const flowId = submitted.json().flow_id as string;
  return waitFor('the flow to end', async () => {
    const status = (await stack.gateway.inject({ method: 'GET', url: `/api/v1/flows/${flowId}` })).json().status as string;
    return ['succeeded', 'failed', 'cancelled'].includes(status) ? status : undefined;
  }, 30_000, 50);
}

const cli = (args: string[], env: Record<string, string>) => runCli(args, { env });

describe('NATS user and password from the settings', () => {
  const PASSWORD = 'correct-horse-battery';
  let nats: ConfiguredNats;
  let stack: Stack | undefined;
  beforeAll(async () => {
    const users = join(dir, 'users.conf');
    writeFileSync(users, `authorization { users = [ { user: taskstream, password: "${PASSWORD}" } ] }\n`);
    nats = await ConfiguredNats.start({ include: [users] });
  });
  afterAll(async () => {
    await stack?.stop();
    await nats?.stop();
  });

  it('connect every service of the embedded stack, which runs a flow', async () => {
    stack = await startStack({ natsUrl: nats.url, logLevel: 'silent', env: { TASKSTREAM_NATS_USER: 'taskstream', TASKSTREAM_NATS_PASSWORD: PASSWORD } });
    expect(await runsAFlow(stack)).toBe('succeeded');
  });

  it('connect a service as its main does: the common settings, then the context from the same environment', async () => {
    const env = { TASKSTREAM_NATS_URL: nats.url, TASKSTREAM_NATS_USER: 'taskstream', TASKSTREAM_NATS_PASSWORD: PASSWORD };
    const common = readCommonEnv(env);
    expect(common.natsAuth).toEqual({ user: 'taskstream', password: PASSWORD });
    const ctx = await createContext({ natsUrl: common.natsUrl, name: 'settings-test', log: silentLogger, env });
    await ctx.nc.close();
  });

  it('are refused by the server with a message naming the user, and never the password', async () => {
    const refused = await startStack({ natsUrl: nats.url, logLevel: 'silent', env: { TASKSTREAM_NATS_USER: 'taskstream', TASKSTREAM_NATS_PASSWORD: 'wrong' } }).catch((error: Error) => error);
    expect((refused as Error).message).toMatch(/^NATS refused the user "taskstream" with the password given/);
    expect((refused as Error).message).not.toContain('wrong');
    const anonymous = await createContext({ natsUrl: nats.url, name: 'settings-test', log: silentLogger, env: {} }).catch((error: Error) => error);
    expect((anonymous as Error).message).toMatch(/^NATS refused a connection without a user/);
  });
});

describe('a NATS credentials file (operator mode)', () => {
  const account = nkeys.createAccount();
  let nats: ConfiguredNats;
  let creds: string;
  let stack: Stack | undefined;
  beforeAll(async () => {
    nats = await ConfiguredNats.start({ include: [operatorConfig(nkeys.createOperator(), account)] });
    creds = credsFile('taskstream', account);
  });
  afterAll(async () => {
    await stack?.stop();
    await nats?.stop();
  });

  it('connects every service of the embedded stack given --nats-creds, which runs a flow', async () => {
    stack = await startStack({ natsUrl: nats.url, natsCreds: creds, logLevel: 'silent', env: {} });
    expect(await runsAFlow(stack)).toBe('succeeded');
  });

  it('connects a service given TASKSTREAM_NATS_CREDS, read through the common settings', async () => {
    const env = { TASKSTREAM_NATS_URL: nats.url, TASKSTREAM_NATS_CREDS: creds };
    expect(readCommonEnv(env).natsAuth).toEqual({ credsFile: creds });
    const ctx = await createContext({ natsUrl: nats.url, name: 'creds-test', log: silentLogger, env });
    await ctx.nc.close();
  });

  it("is refused naming the file when its user is not of this server's operator, and refused before connecting when unreadable", async () => {
    const stranger = credsFile('stranger', nkeys.createAccount());
    const refused = await createContext({ natsUrl: nats.url, name: 'creds-test', log: silentLogger, env: { TASKSTREAM_NATS_CREDS: stranger } }).catch((error: Error) => error);
    expect((refused as Error).message).toMatch(new RegExp(`^NATS refused the credentials in ${stranger} \\(TASKSTREAM_NATS_CREDS\\)`));
    const missing = join(dir, 'missing.creds');
    const unreadable = await createContext({ natsUrl: nats.url, name: 'creds-test', log: silentLogger, env: { TASKSTREAM_NATS_CREDS: missing } }).catch((error: Error) => error);
    expect(unreadable).toEqual(new SettingError('TASKSTREAM_NATS_CREDS', `TASKSTREAM_NATS_CREDS names ${missing}, which cannot be read (no such file)`));
  });

  it('is what `taskstream provision`, `keys --nats` and `<service>` connect with through --nats-creds', async () => {
    const provisioned = await cli(['provision', '--nats', nats.url, '--nats-creds', creds, '--prefix', 'cli'], {});
    expect(provisioned, provisioned.stderr).toMatchObject({ code: 0 });
    expect(provisioned.stdout).toContain('streams: CLI_EVENTS, CLI_WORK, CLI_TIMERS, CLI_SIGNALS, CLI_DLQ');
    const keys = await cli(['keys', 'list', '--nats', nats.url, '--nats-creds', creds, '--prefix', 'cli', '--json'], {});
    expect(keys, keys.stderr).toMatchObject({ code: 0, stdout: '[]\n' });
    const both = await cli(['keys', 'list', '--nats', nats.url, '--nats-creds', creds], { TASKSTREAM_NATS_USER: 'taskstream' });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^error: TASKSTREAM_NATS_CREDS and TASKSTREAM_NATS_USER are both set/);
    const planner = await cli(['planner', '--nats', nats.url, '--nats-creds', join(dir, 'missing.creds'), '--log-level', 'error'], {});
    expect(planner.code).toBe(1);
    expect(planner.stdout).toContain(`TASKSTREAM_NATS_CREDS names ${join(dir, 'missing.creds')}, which cannot be read (no such file)`);
  });
});
