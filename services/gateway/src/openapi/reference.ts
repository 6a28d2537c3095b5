import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError } from '../errors.js';
import { NO_QUERY } from '../routes/input.js';

/**
 * The browsable reference at GET /docs: Swagger UI over GET /openapi.json. Its files are the ones
 * @fastify/swagger-ui ships (a copy of swagger-ui-dist), served from disk by name; the page, its
 * start script and its Content-Security-Policy are this gateway's, so it loads nothing from
 * anywhere else. The plugin itself is not registered: its page route is also registered with a
 * trailing slash, which no onRoute hook sees (so no scope check would), and it serves a second copy
 * of the document.
 */

export const DOCS_PAGE = '/docs';
const ASSETS = '/docs/static';

const STATIC_DIR = join(dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui')), 'static');

const FILES: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'index.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/** The page may load only this gateway's files and document. */
const CSP =
  "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; form-action 'self'; frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'";

const page = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Taskstream API</title>
    <link rel="stylesheet" type="text/css" href="${ASSETS}/swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="${ASSETS}/index.css" />
    <link rel="icon" type="image/png" href="${ASSETS}/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="${ASSETS}/favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${ASSETS}/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="${ASSETS}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="${ASSETS}/start.js" charset="UTF-8"></script>
  </body>
</html>
`;

/** Starts Swagger UI on the document; `validatorUrl: null` keeps it from sending the document to an online validator. */
const start = (documentUrl: string) => `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(documentUrl)},
    dom_id: '#swagger-ui',
    deepLinking: true,
    defaultModelsExpandDepth: 0,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout',
  });
};
`;

const ASSET_PARAMS = z.object({ file: z.string() });

/** The reference's page and files; `documentUrl` is where the page finds the document. */
export function registerReference(app: FastifyInstance, documentUrl: string): void {
  const hidden = { hide: true, querystring: NO_QUERY } as const;
  app.get(DOCS_PAGE, { schema: hidden }, async (_request, reply) => reply.header('content-security-policy', CSP).type('text/html; charset=utf-8').send(page));
  app.get(`${ASSETS}/:file`, { schema: { ...hidden, params: ASSET_PARAMS } }, async (request, reply) => {
    const { file } = request.params as z.output<typeof ASSET_PARAMS>;
    reply.header('content-security-policy', CSP);
    if (file === 'start.js') return reply.type('application/javascript; charset=utf-8').send(start(documentUrl));
    const type = Object.hasOwn(FILES, file) ? FILES[file] : undefined;
    if (type === undefined) throw apiError('ROUTE_NOT_FOUND', request.method, `${ASSETS}/${file}`.slice(0, 200));
    return reply.type(type).send(await readFile(join(STATIC_DIR, file)));
  });
}
