import { parseFlowText } from '@taskstream/domain';
import type { ApiKeyStore, SecretStore } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import type { Approvals } from '../approvals.js';
import type { DeadLetterQueue } from '../dead-letters.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import type { Queues } from '../queues.js';
import type { Schedules } from '../schedules.js';
import type { Templates } from '../templates.js';
import type { Triggers } from '../triggers.js';
import { registerApprovalRoutes } from './approvals.js';
import { registerArtifactRoutes } from './artifacts.js';
import { registerDeadLetterRoutes } from './dlq.js';
import { registerFeedRoutes } from './feed.js';
import { registerFlowRoutes } from './flows.js';
import { registerHealthRoutes } from './health.js';
import { registerHistoryRoutes } from './history.js';
import { registerKeyRoutes } from './keys.js';
import { registerQueueRoutes } from './queues.js';
import { registerScheduleRoutes } from './schedules.js';
import { registerSecretRoutes } from './secrets.js';
import { registerSignalRoutes } from './signals.js';
import { registerHookRoutes } from './hooks.js';
import { registerTemplateRoutes } from './templates.js';
import { registerTriggerRoutes } from './triggers.js';
import { registerMcpRoutes } from '../mcp.js';
import { registerTaskedRoutes } from '../tasked/index.js';
import { DEFAULT_CLIENT_STALL_MS } from '../stall.js';
import { registerWhoamiRoute } from '../whoami.js';

/** What the routes serve from; used only when a request arrives. */
export interface RouteServices {
  ctx: ServiceContext;
  flows: Flows;
  approvals: Approvals;
  index: FlowIndex;
  queues: Queues;
  dlq: DeadLetterQueue;
  secrets: SecretStore;
  keys: ApiKeyStore;
  schedules: Schedules;
  templates: Templates;
  triggers: Triggers;
  /** How long a streaming client (a feed, a Tasked event stream) may read nothing of what waits for it before it is dropped. */
  clientStallMs: number;
}

/** Every route of the API, family by family. */
export function registerRoutes(app: FastifyInstance, s: RouteServices): void {
  registerHealthRoutes(app, s.ctx);
  registerFlowRoutes(app, s.flows, parseFlowText);
  registerApprovalRoutes(app, s.approvals);
  registerSignalRoutes(app, s.ctx);
  registerArtifactRoutes(app, s.ctx);
  registerFeedRoutes(app, s.ctx, s.flows, s.index, s.clientStallMs);
  registerQueueRoutes(app, s.queues);
  registerHistoryRoutes(app, s.flows, s.index, s.ctx);
  registerDeadLetterRoutes(app, s.dlq);
  registerSecretRoutes(app, s.secrets);
  registerKeyRoutes(app, s.keys);
  registerWhoamiRoute(app, s.keys);
  registerScheduleRoutes(app, s.schedules);
  registerTemplateRoutes(app, s.templates);
  registerTriggerRoutes(app, s.triggers);
  registerHookRoutes(app, s.triggers);
  registerMcpRoutes(app);
  // Tasked's REST API under /tasked, on the same services.
  registerTaskedRoutes(app, { ctx: s.ctx, flows: s.flows, approvals: s.approvals, index: s.index, queues: s.queues, schedules: s.schedules, clientStallMs: s.clientStallMs });
}

/**
 * Services for registering the routes only to describe them (the OpenAPI document without NATS):
 * anything a handler would reach for fails loudly.
 */
export function describingOnly(): RouteServices {
  const absent = new Proxy(
    {},
    {
      get() {
        throw new Error('these routes were registered to be described, not to serve requests');
      },
    },
  ) as never;
  return { ctx: absent, flows: absent, approvals: absent, index: absent, queues: absent, dlq: absent, secrets: absent, keys: absent, schedules: absent, templates: absent, triggers: absent, clientStallMs: DEFAULT_CLIENT_STALL_MS };
}
