import { SECRET_NAME_RULE, SecretName, secretTooLarge, type SecretStore } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError, problemsError, type Problem } from '../errors.js';
import { NO_QUERY, param, Refusal, shapeProblems } from './input.js';

/**
 * Secrets are write-only here: a value arrives in a PUT body and is never answered, logged or
 * quoted in an error. (Request logs carry the method and URL, never a body; a value sent in the
 * URL would be logged, which is why it only ever travels in the body.)
 */

const secretName = param((raw) => (SecretName.safeParse(raw).success ? raw : new Refusal(`must be a secret name: ${SECRET_NAME_RULE}`)));
const SECRET_PARAMS = z.object({ name: secretName });
type SecretParams = { Params: z.output<typeof SECRET_PARAMS> };
const config = { scope: 'admin', params: SECRET_PARAMS, query: NO_QUERY } as const;

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

export function registerSecretRoutes(app: FastifyInstance, secrets: SecretStore): void {
  app.get('/api/v1/secrets', { config: { scope: 'admin', query: NO_QUERY } }, async () => ({ secrets: await secrets.list() }));

  app.put<SecretParams & { Body: string | undefined }>('/api/v1/secrets/:name', { config }, async (request) => secrets.put(request.params.name, readValue(request.body)));

  app.delete<SecretParams>('/api/v1/secrets/:name', { config }, async (request, reply) => {
    if (!(await secrets.delete(request.params.name))) throw apiError('SECRET_NOT_FOUND', request.params.name);
    return reply.status(204).send();
  });
}
