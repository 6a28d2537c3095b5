import fc from 'fast-check';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/errors.js';
import { EARLIEST_TIME, LATEST_TIME, listIds, listParam, MAX_DEPTH, parseBody, parseTime, quote, readParameters, Refusal, sequence, shapeProblems, wholeNumber } from '../src/routes/input.js';
import { z } from 'zod';

const thrown = (f: () => unknown): ApiError => {
  try {
    f();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('did not throw');
};

describe('parseTime', () => {
  it('reads RFC 3339 date-times with any offset and full dates', () => {
    expect(parseTime('2026-11-23T05:00:00Z')).toEqual(new Date('2026-11-23T05:00:00.000Z'));
    expect(parseTime('2026-11-23t05:00:00z')).toEqual(new Date('2026-11-23T05:00:00.000Z'));
    expect(parseTime('2026-11-23T07:30:00+02:30')).toEqual(new Date('2026-11-23T05:00:00.000Z'));
    expect(parseTime('2026-11-22T23:00:00-06:00')).toEqual(new Date('2026-11-23T05:00:00.000Z'));
    expect(parseTime('2026-11-23T05:00:00.123456789Z')).toEqual(new Date('2026-11-23T05:00:00.123Z'));
    expect(parseTime('2026-11-23')).toEqual(new Date('2026-11-23T00:00:00.000Z'));
    expect(parseTime('2024-02-29T00:00:00Z')).toEqual(new Date('2024-02-29T00:00:00.000Z'));
  });

  it('refuses what Date.parse would guess at, and times outside the range JetStream handles', () => {
    for (const raw of [
      '1',
      'yesterday',
      '2026-11-23T05:00:00',
      '2026-11-23 05:00:00Z',
      '2026-11-23T05:00Z',
      '2026-02-30T00:00:00Z',
      '2025-02-29',
      '2026-13-01',
      '2026-11-23T24:00:00Z',
      '2026-11-23T23:60:00Z',
      '2026-11-23T23:59:60Z',
      '2026-11-23T05:00:00+24:00',
      '2026-11-23T05:00:00+02:60',
      '2026-11-23T05:00:00.Z',
      '2026-11-23T05:00:00.1234567891Z',
      '-271821-04-20T00:00:00Z',
      '+275760-09-13T00:00:00Z',
      '2262-04-11T23:47:17Z',
      '1969-12-31T23:59:59.999Z',
      '2200-01-01T00:00:00.001Z',
      '1970-01-01T00:00:00+00:01',
      ' 2026-11-23T05:00:00Z',
    ]) {
      expect(parseTime(raw), raw).toBeInstanceOf(Refusal);
    }
    expect(parseTime(EARLIEST_TIME)).toEqual(new Date(EARLIEST_TIME));
    expect(parseTime(LATEST_TIME)).toEqual(new Date(LATEST_TIME));
  });

  it('explains a "+" that arrived as a space', () => {
    expect((parseTime('2026-11-23T07:00:00 02:00') as Refusal).why).toMatch(/%2B/);
  });

  it('reads back every time in range as written by toISOString, and never throws', () => {
    const min = Date.parse(EARLIEST_TIME);
    const max = Date.parse(LATEST_TIME);
    fc.assert(
      fc.property(fc.integer({ min, max }), (ms) => {
        expect(parseTime(new Date(ms).toISOString())).toEqual(new Date(ms));
      }),
    );
    fc.assert(
      fc.property(fc.string(), (raw) => {
        const result = parseTime(raw);
        if (result instanceof Date) expect(result.getTime()).toBeGreaterThanOrEqual(min);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parameter schemas', () => {
  const q = z.object({ limit: wholeNumber(1, 1000).optional(), after: sequence(0).optional(), at: sequence(1).optional(), tags: listParam((raw) => (raw === 'bad' ? new Refusal('is bad') : raw), 3, true).optional() });

  it('reads decimal digits only, within bounds', () => {
    expect(q.parse({ limit: '1000', after: '0', at: '9007199254740991' })).toEqual({ limit: 1000, after: 0, at: 9007199254740991 });
    for (const limit of ['0', '1001', '-1', '1e2', '0x10', ' 5', '5 ', '1.0', '', '٣']) expect(q.safeParse({ limit }).success, limit).toBe(false);
    for (const at of ['0', '9007199254740992', '99999999999999999']) expect(q.safeParse({ at }).success, at).toBe(false);
  });

  it('takes lists repeated, comma-separated or both, bounded', () => {
    expect(q.parse({ tags: ['a,b', 'c'] })).toEqual({ tags: ['a', 'b', 'c'] });
    expect(q.parse({ tags: 'a,,' })).toEqual({ tags: ['a'] });
    expect(q.safeParse({ tags: 'a,b,c,d' }).success).toBe(false);
    expect(q.safeParse({ tags: ['a', 'bad'] }).success).toBe(false);
  });
});

describe('readParameters', () => {
  const querystring = z.object({ one: z.string().optional(), many: listParam((raw) => raw, 5, false).optional() });
  const request = (query: Record<string, unknown>, schema: object = { querystring }) => ({ query, params: {}, routeOptions: { url: '/r', config: {}, schema } }) as unknown as FastifyRequest;

  it('refuses unknown and repeated parameters, naming them', () => {
    expect(thrown(() => readParameters(request({ other: 'x' }))).toJSON().error).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'other', message: expect.stringMatching(/not a parameter of \/r; known: one, many/) });
    expect(thrown(() => readParameters(request({ one: ['a', 'b'] }))).toJSON().error).toMatchObject({ parameter: 'one', message: 'parameter "one" is given more than once; give it once' });
    expect(thrown(() => readParameters(request({ [`x${'y'.repeat(500)}`]: '1' }))).message.length).toBeLessThan(200);
  });

  it('replaces the query with the parsed values, lists included', () => {
    const r = request({ one: 'a', many: ['b', 'c'] });
    readParameters(r);
    expect(r.query).toEqual({ one: 'a', many: ['b', 'c'] });
  });

  it('refuses repeats on routes that declare no query schema, and ignores the rest', () => {
    expect(thrown(() => readParameters(request({ limit: ['1', '2'] }, {}))).details.parameter).toBe('limit');
    expect(() => readParameters(request({ anything: '1' }, {}))).not.toThrow();
  });
});

describe('shapeProblems', () => {
  it('finds nesting beyond the limit without recursion, at any depth a body allows', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000));
    expect(shapeProblems({ a: deep }, 0)).toEqual([{ path: `a${'[0]'.repeat(MAX_DEPTH - 1)}`, message: expect.stringMatching(/nested more than/) }]);
    expect(shapeProblems(JSON.parse('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH)), 0)).toEqual([]);
  });

  it('finds prototype keys down to the depth asked, with their paths', () => {
    const value = JSON.parse('{"__proto__":{"a":1},"x":{"constructor":1,"y":{"prototype":1}},"l":[{"__proto__":1}]}');
    expect(shapeProblems(value, 1).map((p) => p.path)).toEqual(['__proto__']);
    expect(shapeProblems(value, 3).map((p) => p.path)).toEqual(['__proto__', 'l[0].__proto__', 'x.constructor', 'x.y.prototype']);
  });
});

describe('parseBody', () => {
  const Body = z.strictObject({ reason: z.string().max(3).optional() });

  it('answers every way a body can be wrong with a 4xx naming the problem', () => {
    expect(parseBody('', Body)).toEqual({});
    expect(parseBody(' {"reason":"ok"} ', Body)).toEqual({ reason: 'ok' });
    expect(thrown(() => parseBody('{', Body)).code).toBe('INVALID_BODY');
    for (const [body, path] of [
      ['null', '$'],
      ['[]', '$'],
      ['{"reason":5}', 'reason'],
      ['{"reason":"long"}', 'reason'],
      ['{"other":1}', 'other'],
      ['{"__proto__":{"reason":"x"}}', '__proto__'],
    ] as const) {
      const error = thrown(() => parseBody(body, Body));
      expect(error.toJSON().error, body).toMatchObject({ code: 'INVALID_REQUEST', problems: [{ path }] });
    }
  });
});

describe('messages', () => {
  it('quote user text briefly and list ids with a bound', () => {
    expect(quote('x'.repeat(1000)).length).toBeLessThan(80);
    expect(listIds(['a', 'b'])).toBe('a, b');
    expect(listIds(Array.from({ length: 30 }, (_, i) => `t${i}`))).toMatch(/t19 and 10 more$/);
  });
});
