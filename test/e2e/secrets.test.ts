import { connectNats, CorruptSecretError, jetstream, Kvm, SecretStore, topology, type NatsConnection } from '@taskstream/nats';
import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../support/deployment.js';
import { runCli } from '../support/cli.js';

// Distinct values, so finding one anywhere it must not be is unambiguous.
const FIRST = 'first-Zq8vXr2pLm';
const SECOND = 'second-Hw3nYt7kQa';
const OTHER = 'other-Pc5sJd9fVb';
const CORRUPT = 'corrupt-Kx4gRe6uNz';
const PIPED = 'piped-Ty2mWq8hLs';
const ARGUMENT = 'argument-Vn6bXc1jRe';
const VALUES = [FIRST, SECOND, OTHER, CORRUPT, PIPED, ARGUMENT];

const cli = (args: string[], stdin?: string) => runCli(args, { ...(stdin !== undefined && { stdin }) });

describe('secrets: write-only through the gateway and the CLI', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let nc: NatsConnection;
  let store: SecretStore;
  let base: string;

  const request = (method: string, path: string, body?: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${base}${path}`, { method, body, headers: body === undefined ? {} : headers });
  const put = (name: string, body: unknown) => request('PUT', `/api/v1/secrets/${name}`, typeof body === 'string' ? body : JSON.stringify(body));
  /** The list, checked to carry no value at all. */
  const list = async () => {
    const response = await request('GET', '/api/v1/secrets');
    const text = await response.text();
    expect(response.status).toBe(200);
    for (const value of VALUES) expect(text).not.toContain(value);
    return JSON.parse(text).secrets as Array<{ name: string; updated_at: string }>;
  };
  /** Asserts the documented error shape and that no value is quoted; returns the error object. */
  const errorOf = async (response: Response, status: number, code: string) => {
    const text = await response.text();
    expect({ status: response.status, text }).toMatchObject({ status });
    for (const value of VALUES) expect(text).not.toContain(value);
    const body = JSON.parse(text);
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatchObject({ code, message: expect.any(String) });
    return body.error;
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    // Debug logging, so every line a request could produce is there to be searched for values.
    deployment = await Deployment.start(nats.url, [['gateway', 'gateway', { TASKSTREAM_LOG_LEVEL: 'debug' }]]);
    base = deployment.gatewayUrl;
    nc = await connectNats({ servers: nats.url, name: 'secrets-test' });
    store = await SecretStore.open(jetstream(nc), topology());
  });
  afterAll(async () => {
    await nc?.close();
    await deployment?.stop();
    await nats?.stop();
  });

  it('sets, lists (names and times only), overwrites and deletes a secret', async () => {
    const created = await put('db.password', { value: FIRST });
    const createdText = await created.text();
    expect(created.status).toBe(200);
    expect(createdText).not.toContain(FIRST);
    const first = JSON.parse(createdText);
    expect(first).toEqual({ name: 'db.password', updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect((await put('API_TOKEN-2', { value: OTHER })).status).toBe(200);

    expect(await list()).toEqual([
      { name: 'API_TOKEN-2', updated_at: expect.any(String) },
      { name: 'db.password', updated_at: first.updated_at },
    ]);
    expect(await store.get('db.password')).toBe(FIRST);

    await new Promise((r) => setTimeout(r, 5));
    const replaced = (await (await put('db.password', { value: SECOND })).json()) as { updated_at: string };
    expect(replaced.updated_at > first.updated_at).toBe(true);
    expect((await list()).find((s) => s.name === 'db.password')).toEqual({ name: 'db.password', updated_at: replaced.updated_at });
    expect(await store.get('db.password')).toBe(SECOND);

    const deleted = await request('DELETE', '/api/v1/secrets/db.password');
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe('');
    expect((await list()).map((s) => s.name)).toEqual(['API_TOKEN-2']);
    expect(await store.get('db.password')).toBeUndefined();

    const again = await errorOf(await request('DELETE', '/api/v1/secrets/db.password'), 404, 'SECRET_NOT_FOUND');
    expect(again.message).toContain('"db.password"');
    await errorOf(await request('DELETE', '/api/v1/secrets/never-set'), 404, 'SECRET_NOT_FOUND');
  });

  it('keeps names with dots anywhere, which KV keys could not hold as they are', async () => {
    for (const name of ['.env', 'a..b', 'trailing.']) {
      expect((await put(name, { value: OTHER })).status).toBe(200);
      expect(await store.get(name)).toBe(OTHER);
    }
    expect((await list()).map((s) => s.name)).toEqual(expect.arrayContaining(['.env', 'a..b', 'trailing.']));
    for (const name of ['.env', 'a..b', 'trailing.']) expect((await request('DELETE', `/api/v1/secrets/${name}`)).status).toBe(204);
  });

  it('refuses bad names, naming the rule', async () => {
    for (const name of ['bad%20name', 'semi;colon', 'a*b', 'caf%C3%A9', 'x%2Fy']) {
      const error = await errorOf(await put(name, { value: OTHER }), 400, 'INVALID_PARAMETER');
      expect(error).toMatchObject({ parameter: 'name', message: expect.stringContaining('1 to 128 characters, each a letter, a digit, "_", "-" or "."') });
      await errorOf(await request('DELETE', `/api/v1/secrets/${name}`), 400, 'INVALID_PARAMETER');
    }
    // The owner module holds the same rule at its bounds.
    await expect(store.put('n'.repeat(128), OTHER)).resolves.toMatchObject({ name: 'n'.repeat(128) });
    expect(await store.delete('n'.repeat(128))).toBe(true);
    await expect(store.put('n'.repeat(129), OTHER)).rejects.toThrow(/1 to 128 characters/);
    await expect(store.put('', OTHER)).rejects.toThrow(/1 to 128 characters/);
  });

  it('refuses a value over 64 KiB, saying the limit, and takes one of exactly 64 KiB', async () => {
    const full = 'é'.repeat(32 * 1024); // 2 bytes each
    expect((await put('big', { value: full })).status).toBe(200);
    expect(await store.get('big')).toBe(full);
    const error = await errorOf(await put('big', { value: `${full}x` }), 400, 'INVALID_REQUEST');
    expect(error.problems).toEqual([{ path: 'value', message: 'is 65537 bytes; a secret value may be at most 65536 bytes (64 KiB)' }]);
    expect(await store.get('big')).toBe(full);
    await expect(store.put('big', `${full}x`)).rejects.toThrow(/at most 65536 bytes/);
  });

  it('refuses a missing, non-string or unreadable value without quoting the body', async () => {
    expect((await errorOf(await put('x', {}), 400, 'INVALID_REQUEST')).problems).toEqual([{ path: 'value', message: 'is required' }]);
    expect((await errorOf(await put('x', { value: 5 }), 400, 'INVALID_REQUEST')).problems).toEqual([{ path: 'value', message: "must be a string: the secret's value" }]);
    expect((await errorOf(await put('x', { value: null }), 400, 'INVALID_REQUEST')).problems).toEqual([{ path: 'value', message: "must be a string: the secret's value" }]);
    expect((await errorOf(await put('x', { value: OTHER, note: OTHER }), 400, 'INVALID_REQUEST')).problems).toEqual([{ path: 'note', message: 'is not a field of a secret; send only "value"' }]);
    expect((await errorOf(await put('x', JSON.stringify(OTHER)), 400, 'INVALID_REQUEST')).problems).toEqual([{ path: '$', message: 'must be an object: {"value": "<the secret>"}' }]);
    // A JSON parser's message quotes the text around the error: here, the value.
    expect((await errorOf(await put('x', `{"value": "${OTHER}`), 400, 'INVALID_BODY')).message).toMatch(/not valid JSON/);
    expect((await errorOf(await put('x', `{"value": "${OTHER}" oops}`), 400, 'INVALID_BODY')).message).toMatch(/not valid JSON/);
    await errorOf(await put('x', ''), 400, 'INVALID_BODY');
    await errorOf(await request('PUT', '/api/v1/secrets/x'), 400, 'INVALID_BODY');
    await errorOf(await request('PUT', '/api/v1/secrets/x?value=y', '{"value":"z"}'), 400, 'INVALID_PARAMETER');
    expect(await store.get('x')).toBeUndefined();
  });

  it('reports a corrupt record as an error naming its key, never trusting or quoting it', async () => {
    const kv = await new Kvm(jetstream(nc)).open(topology().secretsBucket);
    await kv.put('broken', new TextEncoder().encode(JSON.stringify({ value: CORRUPT, updated_at: 'yesterday' })));
    const error = await store.get('broken').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptSecretError);
    expect((error as Error).message).toMatch(/secret key "broken" in bucket ts_secrets is corrupt \("updated_at" is not valid\)/);
    expect((error as Error).message).not.toContain(CORRUPT);
    await errorOf(await request('GET', '/api/v1/secrets'), 500, 'INTERNAL');
    // Deleting does not read the record, so a corrupt one can always be removed.
    expect((await request('DELETE', '/api/v1/secrets/broken')).status).toBe(204);
    await list();
  });

  it('sets a secret from stdin or an argument with the CLI, lists and deletes it', async () => {
    const piped = await cli(['secret', 'set', 'cli.token', '--server', base], `${PIPED}\n`);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/^secret cli\.token set at \d{4}-\d\d-\d\dT[\d:.]+Z\n$/);
    expect(await store.get('cli.token')).toBe(PIPED);

    const dash = await cli(['secret', 'set', 'cli.dash', '-', '--server', base], `two\nlines\r\n`);
    expect(dash.code, dash.stderr).toBe(0);
    expect(await store.get('cli.dash')).toBe('two\nlines');

    const argument = await cli(['secret', 'set', 'cli.arg', ARGUMENT, '--server', base]);
    expect(argument.code, argument.stderr).toBe(0);
    expect(await store.get('cli.arg')).toBe(ARGUMENT);

    const listed = await cli(['secret', 'list', '--server', base]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^cli\.arg +\d{4}-\d\d-\d\dT[\d:.]+Z$/m);
    expect(listed.stdout).toMatch(/^cli\.token +\d{4}-/m);
    for (const value of VALUES) expect(listed.stdout).not.toContain(value);
    const json = await cli(['secret', 'list', '--json', '--server', base]);
    expect(JSON.parse(json.stdout).map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(['cli.arg', 'cli.dash', 'cli.token']));

    const empty = await cli(['secret', 'set', 'cli.empty', '--server', base], '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/no value for secret cli\.empty arrived on stdin\nhint: pipe it in/);

    const badName = await cli(['secret', 'set', 'no;way', 'x', '--server', base]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('must be a secret name: 1 to 128 characters');

    const deleted = await cli(['secret', 'delete', 'cli.token', '--server', base]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe('secret cli.token deleted\n');
    const missing = await cli(['secret', 'delete', 'cli.token', '--server', base]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no secret named "cli\.token"/);
  });

  it('leaves no value in the gateway log or the event log', async () => {
    const logs = deployment.logs();
    expect(logs).toContain('/api/v1/secrets/'); // requests were logged...
    for (const value of VALUES) expect(logs).not.toContain(value); // ...their bodies were not
    const events = await (await request('GET', '/api/v1/events?since=1970-01-01')).text();
    for (const value of VALUES) expect(events).not.toContain(value);
  });
});
