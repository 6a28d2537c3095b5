import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import type { Approvals } from '../approvals.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import type { Queues } from '../queues.js';
import type { Schedules } from '../schedules.js';
import { toTasked, TaskedError } from './errors.js';
import { registerTaskedExportRoutes } from './routes-export.js';
import { registerTaskedFlowRoutes } from './routes-flows.js';
import { registerTaskedQueueRoutes } from './routes-queues.js';
import { registerTaskedScheduleRoutes } from './routes-schedules.js';
import { registerTaskedTaskRoutes } from './routes-tasks.js';
import { registerTaskedEventRoutes } from './sse.js';

/**
 * Tasked's REST API under `/tasked` (`/tasked/healthz`, `/tasked/api/v1/...`), so a Tasked client
 * pointed at `http://host:8080/tasked` works unchanged: Tasked's routes, shapes, states, status
 * codes and `{error, message}` bodies, served by the gateway's own services (the same log, views,
 * queue policies, approvals and schedules as /api/v1), with the same API keys and scopes.
 */

export const TASKED_PREFIX = '/tasked';

/** What the Tasked routes serve from: the gateway's own services. */
export interface TaskedServices {
  ctx: ServiceContext;
  flows: Flows;
  approvals: Approvals;
  index: FlowIndex;
  queues: Queues;
  schedules: Schedules;
  /** How long an event stream's client may read nothing of what waits for it before it is dropped. */
  clientStallMs: number;
}

/** Failures that mean NATS did not answer (worth a retry), as the gateway's own error answers judge them. */
const BACKEND_FAILURE = /NATS|JetStream|timeout|connection/i;

/** Every error of a Tasked route in Tasked's shape; a failure of the gateway itself is logged and answered as Tasked does, saying nothing more. */
function answerTaskedErrors(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    let answer = toTasked(error, request.routeOptions.bodyLimit ?? 0, String(request.headers['content-type'] ?? 'none'));
    if (answer === undefined) {
      request.log.error({ err: error }, 'request failed');
      answer = BACKEND_FAILURE.test((error as Error).message ?? '')
        ? new TaskedError(503, 'service_unavailable', 'the NATS JetStream backend did not answer; retry shortly')
        : new TaskedError(500, 'internal_error', 'internal error');
    }
    return reply.status(answer.status).send(answer.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const answer = new TaskedError(404, 'not_found', `No route ${request.method} ${request.url.slice(0, 200)}; Tasked's routes are under /tasked/api/v1 (see docs/api.md)`);
    return reply.status(404).send(answer.toJSON());
  });
}

/** Registers every Tasked route under TASKED_PREFIX, as a plugin with its own error answers. */
export function registerTaskedRoutes(app: FastifyInstance, services: TaskedServices): void {
  void app.register(
    async (tasked) => {
      answerTaskedErrors(tasked);
      // Public, as /healthz: a liveness check for what a Tasked client calls its server.
      tasked.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
      registerTaskedQueueRoutes(tasked, services);
      registerTaskedFlowRoutes(tasked, services);
      registerTaskedExportRoutes(tasked, services);
      registerTaskedTaskRoutes(tasked, services);
      registerTaskedEventRoutes(tasked, services);
      registerTaskedScheduleRoutes(tasked, services);
    },
    { prefix: TASKED_PREFIX },
  );
}
