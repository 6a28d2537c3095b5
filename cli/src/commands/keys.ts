import { API_KEY_SCOPES, ApiKeyStore, KEY_LIFETIME_RULE, parseKeyLifetime, silentLogger, type ApiKeyInfo, type ApiKeyScope } from '@taskstream/nats';
import { createContext, flagsAsEnv, NATS_AUTH_SETTINGS } from '@taskstream/runtime';
import { GatewayClient } from '../client.js';
import { UserError } from '../user-error.js';

/**
 * `taskstream keys create|list|revoke`: through the gateway with an admin key, or straight to NATS
 * with `--nats` (how the very first admin key is made, before any key can call the gateway).
 */

export interface KeysOptions {
  server: string;
  apiKey?: string;
  /** Talk to NATS directly instead of the gateway. */
  nats?: string;
  /** With `nats`: the NATS credentials file to connect with (else TASKSTREAM_NATS_CREDS, or TASKSTREAM_NATS_USER and its password). */
  natsCreds?: string;
  prefix: string;
  json?: boolean;
}

export interface CreateOptions extends KeysOptions {
  scope: string;
  name: string;
  expires?: string;
}

type Created = ApiKeyInfo & { key: string };

/** Runs `use` with the keys bucket of the NATS at `url`, then disconnects. */
async function withStore<T>(url: string, options: KeysOptions, use: (store: ApiKeyStore) => Promise<T>): Promise<T> {
  const env = { ...process.env, ...flagsAsEnv(NATS_AUTH_SETTINGS, { natsCreds: options.natsCreds }) };
  const ctx = await createContext({ natsUrl: url.split(','), name: 'taskstream-keys', log: silentLogger, prefix: options.prefix, env });
  try {
    return await use(await ApiKeyStore.open(ctx.js, ctx.topo));
  } finally {
    await ctx.nc.close().catch(() => undefined);
  }
}

const client = (options: KeysOptions) => new GatewayClient(options.server, options.apiKey);

export async function createKey(options: CreateOptions): Promise<void> {
  if (!(API_KEY_SCOPES as readonly string[]).includes(options.scope)) throw new UserError(`--scope must be one of ${API_KEY_SCOPES.join(', ')}, not ${JSON.stringify(options.scope)}`);
  const scope = options.scope as ApiKeyScope;
  let expiresInMs: number | undefined;
  if (options.expires !== undefined) {
    expiresInMs = parseKeyLifetime(options.expires);
    if (expiresInMs === undefined) throw new UserError(`--expires must be ${KEY_LIFETIME_RULE}, not ${JSON.stringify(options.expires)}`);
  }
  let created: Created;
  if (options.nats !== undefined) {
    created = await withStore(options.nats, options, async (store) => {
      try {
        const { info, key } = await store.create({ name: options.name, scope, ...(expiresInMs !== undefined && { expiresInMs }) });
        return { ...info, key };
      } catch (error) {
        if (/^invalid /.test((error as Error).message)) throw new UserError((error as Error).message);
        throw error;
      }
    });
  } else {
    created = await client(options).post<Created>('/api/v1/keys', { name: options.name, scope, ...(options.expires !== undefined && { expires_in: options.expires }) });
  }
  if (options.json) return console.log(JSON.stringify(created, null, 2));
  // The key alone on stdout, so `KEY=$(taskstream keys create ...)` captures it; the rest on stderr.
  console.log(created.key);
  console.error(`created API key ${created.id} (scope ${created.scope}, name ${JSON.stringify(created.name)}${created.expires_at ? `, expires ${created.expires_at}` : ''}); this is the only time it is shown: store it now`);
}

function describe(key: ApiKeyInfo, now: number): string {
  const state = key.revoked_at ? `revoked ${key.revoked_at}` : key.expires_at && Date.parse(key.expires_at) <= now ? `expired ${key.expires_at}` : key.expires_at ? `expires ${key.expires_at}` : 'no expiry';
  return `${key.id}  ${key.scope.padEnd(6)}  created ${key.created_at}  ${state}  last used ${key.last_used_on ?? 'never'}  ${key.name}`;
}

export async function listKeys(options: KeysOptions): Promise<void> {
  const keys = options.nats !== undefined ? await withStore(options.nats, options, (store) => store.list()) : (await client(options).get<{ keys: ApiKeyInfo[] }>('/api/v1/keys')).keys;
  if (options.json) return console.log(JSON.stringify(keys, null, 2));
  if (keys.length === 0) console.log('no API keys; create one with `taskstream keys create --scope admin --name NAME`');
  const now = Date.now();
  for (const key of keys) console.log(describe(key, now));
}

export async function revokeKey(id: string, options: KeysOptions): Promise<void> {
  if (options.nats !== undefined) {
    const revoked = await withStore(options.nats, options, (store) => store.revoke(id));
    if (!revoked) throw new UserError(`no API key with id "${id}"`, 'list them with `taskstream keys list`');
  } else {
    await client(options).remove(`/api/v1/keys/${encodeURIComponent(id)}`);
  }
  console.log(`API key ${id} revoked`);
}
