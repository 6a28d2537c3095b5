import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkMapping, mapTriggerParams, TriggerBody } from '../src/index.js';

const request = {
  body: { action: 'opened', pull_request: { number: 7, labels: [{ name: 'ci' }], 'odd key': true }, count: 3 },
  headers: { 'x-github-event': 'pull_request', 'content-type': 'application/json' },
};

describe('mapTriggerParams', () => {
  it('gives a whole reference its value with its type, and renders references inside text', () => {
    const mapped = mapTriggerParams(
      {
        action: '${trigger.body.action}',
        number: '${trigger.body.pull_request.number}',
        label: '${trigger.body.pull_request.labels[0].name}',
        odd: '${trigger.body.pull_request["odd key"]}',
        event: '${trigger.headers.X-GitHub-Event}',
        title: 'PR #${trigger.body.pull_request.number} (${trigger.headers.x-github-event}): ${trigger.body.pull_request.labels}',
        constant: { env: 'prod', n: 1, nested: ['${trigger.body.count}'] },
        whole: '${trigger.body}',
      },
      request,
    );
    expect(mapped).toEqual({
      ok: true,
      params: {
        action: 'opened',
        number: 7,
        label: 'ci',
        odd: true,
        event: 'pull_request',
        title: 'PR #7 (pull_request): [{"name":"ci"}]',
        constant: { env: 'prod', n: 1, nested: [3] },
        whole: request.body,
      },
    });
  });

  it('leaves out a param that is exactly a reference to something the delivery lacks', () => {
    expect(mapTriggerParams({ a: '${trigger.body.nope}', b: '${trigger.headers.x-none}', c: '${trigger.body.count}' }, request)).toEqual({ ok: true, params: { c: 3 } });
  });

  it('refuses a missing value inside text, naming the param and the reference', () => {
    expect(mapTriggerParams({ a: 'id ${trigger.body.pull_request.id}' }, request)).toEqual({
      ok: false,
      problems: [{ path: 'params.a', message: '${trigger.body.pull_request.id}: the delivery has no such field in its body' }],
    });
  });

  it('leaves strings without trigger references as they are (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.string().filter((s) => !s.includes('${trigger.'))), (mapping) => {
        expect(mapTriggerParams(mapping, request)).toEqual({ ok: true, params: mapping });
      }),
    );
  });

  it('reads a body field of any name through a quoted path (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }), (key, value) => {
        const mapped = mapTriggerParams({ p: `\${trigger.body[${JSON.stringify(key)}]}` }, { body: { [key]: value }, headers: {} });
        expect(mapped).toEqual({ ok: true, params: { p: value } });
      }),
    );
  });
});

describe('a trigger definition', () => {
  const valid = { template: 'deploy', params: { env: '${trigger.body.env}' }, verify: { scheme: 'github', secret: 'gh.hook' } };
  const problems = (input: unknown) => {
    const result = TriggerBody.safeParse(input);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts each scheme with what it needs', () => {
    expect(problems(valid)).toEqual([]);
    expect(problems({ ...valid, verify: { scheme: 'stripe', secret: 's', tolerance_secs: 60 } })).toEqual([]);
    expect(problems({ ...valid, verify: { scheme: 'hmac', secret: 's', header: 'X-Signature' } })).toEqual([]);
    expect(problems({ ...valid, verify: { scheme: 'standard_webhooks', secret: 's' } })).toEqual([]);
    expect(problems({ ...valid, verify: { scheme: 'none' } })).toEqual([]);
  });

  it('refuses a missing secret, a tolerance over 300 s or on another scheme, and malformed references', () => {
    expect(problems({ ...valid, verify: { scheme: 'github' } })).toEqual([expect.stringMatching(/^verify\.secret: is required for scheme "github"/)]);
    expect(problems({ ...valid, verify: { scheme: 'stripe', secret: 's', tolerance_secs: 301 } })).toEqual([expect.stringMatching(/^verify\.tolerance_secs:/)]);
    expect(problems({ ...valid, verify: { scheme: 'github', secret: 's', tolerance_secs: 30 } })).toEqual([expect.stringMatching(/^verify\.tolerance_secs: only applies to scheme "stripe"/)]);
    expect(problems({ ...valid, verify: { scheme: 'nope', secret: 's' } })).toEqual([expect.stringMatching(/^verify\.scheme: must be one of/)]);
    expect(problems({ ...valid, params: { a: '${trigger.query.x}', b: { c: '${trigger.body.x' }, d: '${trigger.headers.a.b}' } })).toEqual([
      expect.stringMatching(/^params\.a: \$\{trigger\.query\.x\}: a trigger reference starts with/),
      expect.stringMatching(/^params\.b\.c: .* has no closing "\}"/),
      expect.stringMatching(/^params\.d: .*name one header/),
    ]);
  });

  it('checks mappings to any depth it accepts', () => {
    expect(checkMapping({ a: { b: [{ c: '${trigger.body.x}' }] } })).toEqual([]);
  });
});
