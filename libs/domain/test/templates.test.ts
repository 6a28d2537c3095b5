import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, instantiateTemplate, MAX_RUN_PARAMS_BYTES, MAX_TEMPLATE_BYTES, nestedRepetition, paramPath, sameDefinition, validateTemplate } from '../src/index.js';

const SCHEMA = {
  type: 'object',
  properties: { env: { type: 'string', enum: ['staging', 'prod'] }, replicas: { type: 'integer', minimum: 1, default: 2 }, tags: { type: 'array', items: { type: 'string' } } },
  required: ['env'],
  additionalProperties: false,
};
const FLOW = {
  name: 'deploy',
  tasks: [
    { id: 'build', executor: 'noop' },
    { id: 'deploy', executor: 'shell', depends_on: ['build'], config: { command: 'echo deploy ${params.env} x${params.replicas}' } },
  ],
};
const TEMPLATE = { flow: FLOW, params_schema: SCHEMA, description: 'deploys a service' };

const problemsOf = (input: unknown) => {
  const result = validateTemplate(input);
  return result.ok ? [] : result.problems;
};

describe('validateTemplate', () => {
  it('accepts a template whose references name declared params', () => {
    const result = validateTemplate(TEMPLATE);
    expect(result.ok).toBe(true);
  });

  it('refuses a reference to a param the schema does not declare, with its path under flow', () => {
    const flow = { ...FLOW, tasks: [{ id: 'a', executor: 'shell', config: { command: 'echo ${params.region}' } }] };
    expect(problemsOf({ flow, params_schema: SCHEMA })).toEqual([
      { path: 'flow.tasks[0].config.command', message: expect.stringMatching(/^\$\{params\.region\} refers to param "region", which params_schema does not declare; add it to params_schema\.properties/) },
    ]);
  });

  it('lists every problem at once: flow params, a bad schema type, and the flow\'s own problems', () => {
    const problems = problemsOf({ flow: { params: { a: 1 }, tasks: [{ id: 'a', executor: 'noop', depends_on: ['zz'] }] }, params_schema: { type: 'array' } });
    expect(problems.map((p) => p.path)).toEqual(['flow.params', 'params_schema.type', 'flow.tasks[0].depends_on[0]']);
  });

  it('refuses a schema that is not valid JSON Schema, saying why', () => {
    const problems = problemsOf({ flow: FLOW, params_schema: { type: 'object', properties: { env: { type: 'strin' } } } });
    expect(problems).toEqual([expect.objectContaining({ path: 'params_schema', message: expect.stringMatching(/^is not a valid JSON Schema/) }), expect.anything(), expect.anything()]);
  });

  it('refuses unknown keywords and formats in the schema rather than ignoring them', () => {
    const schema = (property: unknown) => ({ flow: { tasks: [{ id: 'a', executor: 'noop' }] }, params_schema: { type: 'object', properties: { p: property } } });
    expect(problemsOf(schema({ type: 'string', format: 'email' }))).toEqual([{ path: 'params_schema', message: expect.stringMatching(/unknown format "email".*use "pattern" instead of "format"/) }]);
    expect(problemsOf(schema({ type: 'string', colour: 'red' }))).toEqual([{ path: 'params_schema', message: expect.stringMatching(/strict mode: unknown keyword: "colour"/) }]);
  });

  it('refuses unknown fields, missing fields and a body that is not an object', () => {
    expect(problemsOf({ flow: FLOW, params_schema: SCHEMA, extra: 1 })).toEqual([{ path: 'extra', message: expect.stringMatching(/^unknown field/) }]);
    expect(problemsOf({ params_schema: SCHEMA }).map((p) => p.path)).toEqual(['flow']);
    expect(problemsOf([1]).map((p) => p.path)).toEqual(['$']);
  });

  it(`refuses a template over ${MAX_TEMPLATE_BYTES} bytes`, () => {
    const big = { ...TEMPLATE, description: undefined, flow: { ...FLOW, labels: { big: 'x'.repeat(200) } }, params_schema: { ...SCHEMA, title: 'y'.repeat(MAX_TEMPLATE_BYTES) } };
    expect(problemsOf(big)).toEqual([{ path: '$', message: expect.stringMatching(/over the 262144-byte \(256 KiB\) limit/) }]);
  });
});

describe('instantiateTemplate', () => {
  it('gives the flow with the params checked and defaults filled in', () => {
    const result = instantiateTemplate(TEMPLATE, { env: 'prod' });
    expect(result).toEqual({ ok: true, definition: expect.objectContaining({ name: 'deploy', params: { env: 'prod', replicas: 2, tags: null } }) });
    if (result.ok) expect(result.definition.tasks.map((t) => t.id)).toEqual(['build', 'deploy']);
  });

  it('lists every problem of the params with its path', () => {
    const result = instantiateTemplate(TEMPLATE, { env: 'dev', replicas: 0, tags: ['a', 3], region: 'eu' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.path).sort()).toEqual(['params.env', 'params.region', 'params.replicas', 'params.tags[1]']);
    expect(result.problems.find((p) => p.path === 'params.env')!.message).toBe('must be one of ["staging","prod"]');
    expect(instantiateTemplate(TEMPLATE, {})).toEqual({ ok: false, problems: [{ path: 'params.env', message: expect.stringMatching(/^is required/) }] });
  });

  it('refuses params nested too deeply before anything recursive reads them', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 5000; i++) deep = [deep];
    expect(instantiateTemplate(TEMPLATE, { env: 'prod', tags: deep })).toEqual({ ok: false, problems: [{ path: 'params', message: 'are nested more than 63 levels deep; flatten them' }] });
  });

  it('refuses params that are not an object, or too large', () => {
    expect(instantiateTemplate(TEMPLATE, [1])).toEqual({ ok: false, problems: [{ path: 'params', message: expect.stringMatching(/^must be a JSON object/) }] });
    expect(instantiateTemplate(TEMPLATE, { env: 'x'.repeat(MAX_RUN_PARAMS_BYTES) })).toEqual({ ok: false, problems: [{ path: 'params', message: expect.stringMatching(/over the 65536-byte/) }] });
  });

  it('sets a declared param the run leaves out to null, so a reference to it resolves', () => {
    const flow = { tasks: [{ id: 'a', executor: 'noop', config: { output: '${params.note}' } }] };
    const schema = { type: 'object', properties: { note: { type: 'string' } } };
    expect(validateTemplate({ flow, params_schema: schema }).ok).toBe(true);
    expect(instantiateTemplate({ flow, params_schema: schema }, {})).toEqual({ ok: true, definition: expect.objectContaining({ params: { note: null } }) });
  });

  it('names a flow without a name after its template', () => {
    const flow = { tasks: [{ id: 'a', executor: 'noop' }] };
    const named = instantiateTemplate({ name: 'nightly', flow, params_schema: { type: 'object' } }, {});
    expect(named.ok && named.definition.name).toBe('nightly');
    const own = instantiateTemplate({ name: 'nightly', flow: { ...flow, name: 'mine' }, params_schema: { type: 'object' } }, {});
    expect(own.ok && own.definition.name).toBe('mine');
  });

  it('leaves the caller\'s params as they were', () => {
    const params = { env: 'staging' };
    instantiateTemplate(TEMPLATE, params);
    expect(params).toEqual({ env: 'staging' });
  });

  it('accepts exactly the params the schema accepts (property)', () => {
    fc.assert(
      fc.property(fc.record({ env: fc.oneof(fc.constantFrom('staging', 'prod'), fc.string()), replicas: fc.oneof(fc.integer({ min: -3, max: 5 }), fc.string()) }, { requiredKeys: [] }), (params) => {
        const valid = (params.env === 'staging' || params.env === 'prod') && (params.replicas === undefined || (typeof params.replicas === 'number' && params.replicas >= 1));
        const result = instantiateTemplate(TEMPLATE, params);
        expect(result.ok).toBe(valid);
        if (result.ok) expect(result.definition.params).toEqual({ replicas: 2, tags: null, ...params });
        else expect(result.problems.every((p) => p.path.startsWith('params'))).toBe(true);
      }),
    );
  });
});

describe('versions: what counts as a change', () => {
  it('ignores key order, and sees any other change (property)', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    fc.assert(
      fc.property(fc.dictionary(fc.string(), json, { maxKeys: 5 }), (flow) => {
        const reversed = Object.fromEntries(Object.entries(flow).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(flow));
        expect(sameDefinition({ flow, params_schema: SCHEMA }, { flow: reversed, params_schema: SCHEMA })).toBe(true);
        expect(sameDefinition({ flow, params_schema: SCHEMA }, { flow: { ...flow, changed: true }, params_schema: SCHEMA })).toBe(Object.hasOwn(flow, 'changed') && flow.changed === true);
        expect(sameDefinition({ flow, params_schema: SCHEMA, description: 'a' }, { flow, params_schema: SCHEMA })).toBe(false);
      }),
    );
  });
});

describe('nestedRepetition', () => {
  it('finds a repeated group that repeats inside, however deep, and lets simple patterns through', () => {
    for (const slow of ['(a+)+', '^(a*)*$', '(\\w+\\s?)*', '((ab)+c)+', '(x(y+))*', '([a-z]+){2,}', '(a{1,})+', '(a+){3}']) expect(nestedRepetition(slow), slow).toBe(true);
    for (const fine of ['^[a-z][a-z0-9-]*$', '(ab)+', '(a+)?', '\\(a+\\)+', '[(a+)]+', '^v[0-9]+(\\.[0-9]+)?$', '^([0-9]{1,3}\\.){3}[0-9]{1,3}$', '(a+){1}', '(a+){0,1}']) expect(nestedRepetition(fine), fine).toBe(false);
  });

  it('refuses such a pattern when the schema is compiled, saying how to fix it', () => {
    const result = validateTemplate({ flow: { tasks: [{ id: 'a', executor: 'noop' }] }, params_schema: { type: 'object', properties: { p: { type: 'string', pattern: '^(a+)+$' } } } });
    expect(result).toEqual({ ok: false, problems: [{ path: 'params_schema', message: expect.stringMatching(/repeats a group that itself repeats .* rewrite it without nested repetition/) }] });
  });
});

describe('paramPath', () => {
  it('writes JSON pointers as the paths references use', () => {
    expect(paramPath('')).toBe('params');
    expect(paramPath('/a/0/b')).toBe('params.a[0].b');
    expect(paramPath('/odd key/x~1y', 'z')).toBe('params["odd key"]["x/y"].z');
  });
});
