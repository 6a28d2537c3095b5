import type { PinoLogger, ServiceContext, ServiceHandle } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { buildGateway, DEFAULT_BODY_LIMIT } from './app.js';
import { checkExposure, readGatewaySecurity, securityOptions } from './settings.js';

export interface ServeOptions {
  host: string;
  port: number;
  logger: PinoLogger;
  bodyLimit?: number;
  /** See GatewayOptions.clientStallMs. */
  clientStallMs?: number;
  /** Where the security settings come from (TASKSTREAM_AUTH and the others; see settings.ts). */
  env?: NodeJS.ProcessEnv;
}

/**
 * A deployed gateway (its own main, and `taskstream gateway`): API keys required unless
 * TASKSTREAM_AUTH=none, which only a loopback address allows unless TASKSTREAM_ALLOW_UNAUTHENTICATED
 * says so. Checked before anything is built, so a refused start changes nothing.
 */
export async function serveGateway(ctx: ServiceContext, options: ServeOptions): Promise<ServiceHandle & { app: FastifyInstance }> {
  const security = readGatewaySecurity(options.env ?? process.env);
  checkExposure(options.host, security.auth, security.allowUnauthenticated);
  const app = await buildGateway(ctx, { logger: options.logger, bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT, ...(options.clientStallMs !== undefined && { clientStallMs: options.clientStallMs }), ...securityOptions(security) });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`port ${options.port} on ${options.host} is in use; choose another port (--port or TASKSTREAM_PORT)`);
    throw error;
  }
  if (security.auth === 'none') app.log.warn({ host: options.host }, 'API keys are off (TASKSTREAM_AUTH=none): whoever reaches this gateway may use every route');
  return { name: 'gateway', app, stop: () => app.close() };
}
