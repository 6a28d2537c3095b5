import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DISPATCHER_SETTINGS } from '@taskstream/dispatcher';
import { EXECUTOR_SETTINGS } from '@taskstream/executor';
import { PLANNER_SETTINGS } from '@taskstream/planner';
import { PROJECTOR_SETTINGS } from '@taskstream/projector';
import { COMMON_SETTINGS, type Settings } from '@taskstream/runtime';
import { describe, expect, it } from 'vitest';
import { startStack } from '../src/embedded.js';
import { stackSettings, type StackSettings } from '../src/stack-settings.js';
import { UserError } from '../src/user-error.js';

const DECLARED: Record<Exclude<keyof StackSettings, 'common'>, Settings> = { planner: PLANNER_SETTINGS, dispatcher: DISPATCHER_SETTINGS, executor: EXECUTOR_SETTINGS, projector: PROJECTOR_SETTINGS };
const declaredDefault = (settings: Settings, name: string) => settings[name]!.schema.parse(settings[name]!.default);

/** The embedded stack's deliberate differences from a deployed service, and nothing else. */
const EMBEDDED = { executor: { queue: '*', shellEnabled: true, httpAllow: ['127.0.0.0/8', '::1'], webhookAllow: ['127.0.0.0/8', '::1'], shutdownGraceMs: 5_000 } } as Record<string, Record<string, unknown>>;

describe("the embedded stack's settings", () => {
  it("give every service's every declared setting its declared default, except the stack's own choices", () => {
    const settings = stackSettings({});
    for (const [service, declared] of Object.entries(DECLARED)) {
      for (const name of Object.keys(declared)) {
        const expected = EMBEDDED[service]?.[name] ?? declaredDefault(declared, name);
        expect(settings[service as keyof typeof DECLARED][name as never], `${service} ${name}`).toEqual(expected);
      }
    }
    expect(settings.common).toEqual({ ...readDefaults(), natsAuth: {}, replicas: 1, provision: true });
  });

  it('take the environment as a deployed service does, under the choices the stack makes itself', () => {
    const env = { TASKSTREAM_LEASE_MS: '2500', TASKSTREAM_ACK_WAIT_MS: '12000', TASKSTREAM_DISPATCH_WINDOW: '0', TASKSTREAM_REBUILD: 'on', TASKSTREAM_FLOW_RETENTION_SECS: '86400', TASKSTREAM_HTTP_ALLOW: 'api.internal', TASKSTREAM_KILL_GRACE_MS: '500' };
    const settings = stackSettings({ env: { ...env, TASKSTREAM_QUEUE: 'ci', TASKSTREAM_ALLOW_SHELL: 'false', TASKSTREAM_SHUTDOWN_GRACE_MS: '60000' } });
    expect(settings.planner.leaseMs).toBe(2500);
    expect(settings.projector).toEqual({ leaseMs: 2500, rebuild: true, flowRetentionSecs: 86_400 });
    expect(settings.dispatcher).toMatchObject({ ackWaitMs: 12_000, dispatchWindow: 0 });
    expect(settings.executor).toMatchObject({ ackWaitMs: 12_000, httpAllow: ['api.internal'], killGraceMs: 500, queue: '*', shellEnabled: true, shutdownGraceMs: 5_000 });
    expect(stackSettings({ env, httpAllow: ['localhost'], queue: 'ci', concurrency: 2, stepGraceMs: 100 }).executor).toMatchObject({ httpAllow: ['localhost'], queue: 'ci', concurrency: 2, shutdownGraceMs: 100 });
  });

  it("ignore a deployment's NATS replicas and users on its own nats-server, and use them on one given with --nats", () => {
    const env = { TASKSTREAM_REPLICAS: '3', TASKSTREAM_NATS_USER: 'planner', TASKSTREAM_NATS_PASSWORD: 'secret', TASKSTREAM_PROVISION: 'false' };
    expect(stackSettings({ env }).common).toMatchObject({ replicas: 1, natsAuth: {}, provision: true });
    expect(stackSettings({ env, natsUrl: 'nats://nats-1:4222' }).common).toMatchObject({ natsUrl: 'nats://nats-1:4222', replicas: 3, natsAuth: { user: 'planner', password: 'secret' }, provision: false });
    expect(stackSettings({ env: {}, natsUrl: 'nats://nats-1:4222', natsCreds: 'ops.creds' }).common.natsAuth).toEqual({ credsFile: 'ops.creds' });
  });

  describe('refuse an invalid value before anything starts, naming the setting', () => {
    // Nothing listens on port 1: a stack that went on to connect would fail with another message.
    const unreachable = 'nats://127.0.0.1:1';
    const refusal = async (options: Parameters<typeof startStack>[0]) => {
      const error = await startStack({ natsUrl: unreachable, logLevel: 'silent', ...options }).then(
        async (stack) => {
          await stack.stop();
          throw new Error('the stack started');
        },
        (rejected: unknown) => rejected,
      );
      expect(error).toBeInstanceOf(UserError);
      return error as UserError;
    };

    it('from the environment', async () => {
      expect((await refusal({ env: { TASKSTREAM_LEASE_MS: '0' } })).message).toBe('TASKSTREAM_LEASE_MS must be at least 1, not "0"');
      expect((await refusal({ env: { TASKSTREAM_ACK_WAIT_MS: 'soon' } })).message).toBe('TASKSTREAM_ACK_WAIT_MS must be a whole number, not "soon"');
      expect((await refusal({ env: { TASKSTREAM_HTTP_ALLOW: 'not a host!' } })).message).toMatch(/^TASKSTREAM_HTTP_ALLOW .*, not "not a host!"$/);
      const refused = await refusal({ env: { TASKSTREAM_NATS_CREDS: 'ops.creds', TASKSTREAM_NATS_USER: 'planner' } });
      expect(refused.message).toMatch(/^TASKSTREAM_NATS_CREDS and TASKSTREAM_NATS_USER are both set/);
      expect(refused.hint).toContain('TASKSTREAM_NATS_CREDS');
    });

    it('from its options', async () => {
      expect((await refusal({ queue: 'no spaces' })).message).toBe('TASKSTREAM_QUEUE must be a queue name or "*", not "no spaces"');
      expect((await refusal({ logLevel: 'loud' })).message).toMatch(/^TASKSTREAM_LOG_LEVEL must be fatal, error/);
    });

    it('without starting its own nats-server', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'taskstream-embedded-'));
      try {
        const ownServer = { natsUrl: undefined, dataDir };
        expect(await refusal({ ...ownServer, env: { TASKSTREAM_DISPATCH_LEASE_MS: '-5' } })).toMatchObject({ message: 'TASKSTREAM_DISPATCH_LEASE_MS must be at least 1, not "-5"' });
        expect(existsSync(join(dataDir, 'nats'))).toBe(false);
        expect(await refusal({ ...ownServer, natsCreds: 'ops.creds' })).toMatchObject({ message: '--nats-creds is for a NATS given with --nats: the embedded nats-server has no users' });
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});

function readDefaults() {
  const { natsUser: _user, natsPassword: _password, natsCreds: _creds, ...common } = COMMON_SETTINGS;
  return Object.fromEntries(Object.keys(common).map((name) => [name, declaredDefault(common, name)]));
}
