import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/**
 * The web UI (the @taskstream/ui package, built by Vite into its dist/) at /ui. Its files are
 * public: the page holds no data, and every call it makes to the API carries the key the user
 * entered. Hashed assets (`/ui/assets/…`, their names change with their content) are cached for a
 * year as immutable; everything else, index.html above all, is revalidated on each load, so a new
 * build is picked up at once. Any other path under /ui is a route of the single-page app and gets
 * index.html. The HTML carries a strict Content-Security-Policy: this origin only, WebSockets to
 * it for the live feeds, inline styles for React Flow's node positions, no inline script.
 */

export const UI_PREFIX = '/ui';
const ASSETS = 'assets/';
const INDEX = 'index.html';

export const UI_CSP =
  "default-src 'self'; base-uri 'self'; connect-src 'self' ws: wss:; font-src 'self'; form-action 'self'; frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'";

const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/**
 * Where the UI's build is: the dist/ folder beside @taskstream/ui's package.json, found the way
 * Node resolves the package from this module, so it holds for the service, for the CLI that
 * imports the gateway, and for tests running its sources. Undefined when the package is not
 * installed.
 */
export function locateUiDist(): string | undefined {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@taskstream/ui/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

const notBuilt = () =>
  new ApiError(
    'UNAVAILABLE',
    503,
    'the web UI was not built, so this gateway has nothing to serve at /ui: run `npm run build` (it builds ui/ into ui/dist), then reload this page; the API under /api/v1 works without it',
  );

const pathOf = (request: FastifyRequest) => (request.params as { '*'?: string })['*'] ?? '';

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** The file under `root` that `relative` names, or undefined for a path that leaves it. */
function within(root: string, relative: string): string | undefined {
  const path = resolve(root, relative);
  return path.startsWith(root + sep) ? path : undefined;
}

export interface UiOptions {
  /** The built UI (default: located with `locateUiDist`). */
  dist?: string;
}

/** GET (and HEAD) /ui and /ui/*: the built UI, or a 503 saying it was not built. */
export async function serveUi(app: FastifyInstance, options: UiOptions = {}): Promise<void> {
  const dist = options.dist ?? locateUiDist();
  // Only reply.sendFile, each call naming its root: the routes are this module's, listed in the route table like any other.
  await app.register(fastifyStatic, { serve: false });

  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = pathOf(request);
    if (dist === undefined || !(await isFile(join(dist, INDEX)))) {
      const error = notBuilt();
      return reply.status(error.status).send(error.toJSON());
    }
    const send = { cacheControl: false } as const;
    // A missing asset is a 404 (the gateway's not-found answer), never the page in its place.
    if (path.startsWith(ASSETS)) return reply.sendFile(path, dist, send);
    const file = path === '' ? undefined : within(dist, path);
    if (file !== undefined && (await isFile(file))) return reply.sendFile(path, dist, send);
    return reply.header('content-security-policy', UI_CSP).sendFile(INDEX, dist, send);
  };

  // The gateway's own onSend hook marks every answer no-store; a route's hook runs after it and sets the UI's caching instead.
  const caching = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode < 400) reply.header('cache-control', pathOf(request).startsWith(ASSETS) ? IMMUTABLE : REVALIDATE);
    return payload;
  };

  const route = { schema: { hide: true }, onSend: caching } as const;
  app.get(UI_PREFIX, route, page);
  app.get(`${UI_PREFIX}/*`, route, page);
}
