import { SECRET_NAME_RULE, SecretName, secretTooLarge, type SecretStore } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError, problemsError, type Problem } from '../errors.js';
import { described } from '../openapi/registry.js';
import { SecretInfoSchema, SecretList } from '../openapi/schemas.js';
import { NO_QUERY, param, Refusal, shapeProblems } from './input.js';

/**
 * Secrets are write-only here: a value arrives in a PUT body and is never answered, logged or
 * quoted in an error. (Request logs carry the method and URL, never a body; a value sent in the
 * URL would be logged, which is why it only ever travels in the body.)
 */

const secretName = described(
  param((raw) => (SecretName.safeParse(raw).success ? raw : new Refusal(`must be a secret name: ${SECRET_NAME_RULE}`)), undefined, { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$' }),
  `A secret name: ${SECRET_NAME_RULE}.`,
);
const SECRET_PARAMS = z.object({ name: secretName });
const admin = { scope: 'admin' } as const;
const one = { tags: ['secrets'], params: SECRET_PARAMS, querystring: NO_QUERY } as const;

const SecretBody = z.strictObject({ value: z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string: the secret\'s value') }) });


/** The value of a PUT body, checked; problems name fields, never quote what they hold. */
function readValue(body: unknown): string {
  let json: unknown;
  try {
    json = typeof body === 'string' && body.trim() !== '' ? JSON.parse(body) : undefined;
  } catch {
    // The parser's message would quote the body, and so perhaps the value.
    throw apiError('INVALID_BODY', 'not valid JSON; send {"value": "<the secret>"} as application/json');
  }
  if (json === undefined) throw apiError('INVALID_BODY', 'it is empty; send {"value": "<the secret>"} as application/json');
  const shape = shapeProblems(json, 1);
  if (shape.length > 0) throw problemsError('INVALID_REQUEST', shape);
  const result = SecretBody.safeParse(json);
  if (!result.success) {
    const problems: Problem[] = result.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: key, message: 'is not a field of a secret; send only "value"' }))
        : [{ path: issue.path.length > 0 ? issue.path.join('.') : '$', message: issue.path.length > 0 ? issue.message : 'must be an object: {"value": "<the secret>"}' }],
    );
    throw problemsError('INVALID_REQUEST', problems);
  }
  const tooLarge = secretTooLarge(result.data.value);
  if (tooLarge) throw problemsError('INVALID_REQUEST', [{ path: 'value', message: tooLarge }]);
  return result.data.value;
}

const list = { config: admin, schema: { operationId: 'listSecrets', summary: 'Secrets', description: 'Names and times only, by name.', tags: ['secrets'], querystring: NO_QUERY, response: { 200: SecretList } } } as const;
const put = {
  config: admin,
  schema: {
    ...one,
    operationId: 'putSecret',
    summary: 'Set a secret',
    description: 'Creates or replaces it. The value (at most 64 KiB as UTF-8) is never answered, logged or quoted in an error.',
    requestBody: SecretBody,
    response: { 200: SecretInfoSchema },
    errors: ['INVALID_BODY', 'INVALID_REQUEST'],
  },
} as const;
const remove = { config: admin, schema: { ...one, operationId: 'deleteSecret', summary: 'Delete a secret', response: { 204: z.undefined() }, errors: ['SECRET_NOT_FOUND'] } } as const;

export function registerSecretRoutes(app: FastifyInstance, secrets: SecretStore): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/secrets', list, async () => ({ secrets: await secrets.list() }));

  api.put('/api/v1/secrets/:name', put, async (request) => secrets.put(request.params.name, readValue(request.body)));

  api.delete('/api/v1/secrets/:name', remove, async (request, reply) => {
    if (!(await secrets.delete(request.params.name))) throw apiError('SECRET_NOT_FOUND', request.params.name);
    return reply.status(204).send();
  });
}
