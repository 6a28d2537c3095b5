import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkExpression, evaluateCondition, evaluateExpression, findReferences, injectShellReferences, resolveReferences, type PathSegment, type RefRoot, type ReferenceScope } from '../src/index.js';

const ALL: ReadonlySet<RefRoot> = new Set<RefRoot>(['tasks', 'flow', 'task', 'params', 'secrets']);
const BARE = /^[A-Za-z0-9_-]+$/;
const INDEX = /^(0|[1-9][0-9]*)$/;

/** A path segment as a reference may spell it, picked among the spellings that mean the same. */
function spell(segment: PathSegment, pick: number): string {
  if (typeof segment === 'number') return pick % 2 === 0 ? `.${segment}` : `[${segment}]`;
  const quoted = pick % 3 === 2 ? `['${segment.replace(/['\\]/g, '\\$&')}']` : `["${segment.replace(/["\\]/g, '\\$&')}"]`;
  return BARE.test(segment) && !INDEX.test(segment) && pick % 3 === 0 ? `.${segment}` : quoted;
}

/** Walks `value` by the choices in `picks`, returning the path taken and the value found there. */
function pathInto(value: unknown, picks: number[]): { path: PathSegment[]; at: unknown } {
  const path: PathSegment[] = [];
  let at = value;
  for (const pick of picks) {
    if (path.length >= 32) break;
    if (Array.isArray(at) && at.length > 0) {
      const index = pick % at.length;
      path.push(index);
      at = at[index];
    } else if (typeof at === 'object' && at !== null && !Array.isArray(at)) {
      const keys = Object.keys(at);
      if (keys.length === 0) break;
      const key = keys[pick % keys.length]!;
      path.push(key);
      at = (at as Record<string, unknown>)[key];
    } else {
      break;
    }
  }
  return { path, at };
}

const scopeOf = (output: unknown, params: unknown = {}): ReferenceScope => ({
  flowId: 'f',
  taskId: 't',
  attempt: 1,
  params,
  outputs: (id) => (id === 'src' ? { found: true, output } : { found: false }),
  secrets: (name) => (name === 'S' ? 'secret' : undefined),
});

describe('references: properties', () => {
  it('(a) resolving with an empty root set returns the input unchanged', () => {
    const withRefs = fc.oneof(fc.jsonValue(), fc.constantFrom('${tasks.src.output}', 'x ${params.a} ${secrets.S}', '${tasks.nope.output.x}', '${params.', '${flow.name}'));
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), withRefs, (value, extra) => {
        const input = { value, extra, list: [extra, value] };
        const outcome = resolveReferences(input, scopeOf(value), new Set());
        expect(outcome).toEqual({ ok: true, value: input, resolved: 0 });
        expect(outcome.ok && outcome.value).toBe(input);
      }),
    );
  });

  it('(b) a whole-string reference to a random path in a random output returns exactly the value there', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), (output, picks, spellings) => {
        const { path, at } = pathInto(output, picks);
        const text = `\${tasks.src.output${path.map((s, i) => spell(s, spellings[i % spellings.length]!)).join('')}}`;
        const found = findReferences(text);
        expect(found.problems).toEqual([]);
        expect(found.references[0]!.path).toEqual(path);
        const outcome = resolveReferences(text, scopeOf(output), ALL);
        expect(outcome).toEqual({ ok: true, value: at, resolved: 1 });
        // The same path through params reads the same value.
        const viaParams = resolveReferences(`\${params.v${path.map((s, i) => spell(s, spellings[i % spellings.length]!)).join('')}}`, scopeOf(null, { v: output }), ALL);
        expect(viaParams.ok && viaParams.value).toEqual(at);
      }),
    );
  });

  it('(c) shell injection never leaves a value in the command: it is the original with references replaced by ${TS_...} only', () => {
    const chunk = fc.string({ maxLength: 12 }).filter((s) => !s.includes('$'));
    const hostile = fc.oneof(fc.string(), fc.constantFrom('; rm -rf ~', '$(id)', '`id`', 'a && b', '"; echo pwned; "', "' || true '", '${HOME}', '\n exit 1', '${TS_REF_1}'));
    fc.assert(
      fc.property(fc.array(fc.tuple(chunk, fc.nat({ max: 4 })), { minLength: 1, maxLength: 10 }), fc.array(hostile, { minLength: 5, maxLength: 5 }), chunk, (parts, values, tail) => {
        const params: Record<string, string> = {};
        values.forEach((v, i) => (params[`k${i}`] = v.replace(/\0/g, '')));
        const command = parts.map(([text, k]) => `${text}\${params.k${k}}`).join('') + tail;
        const result = injectShellReferences(command, scopeOf(null, params), ALL);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        const names = new Map<number, string>();
        const expected = parts.map(([text, k]) => {
          if (!names.has(k)) names.set(k, `TS_REF_${names.size + 1}`);
          return `${text}\${${names.get(k)}}`;
        });
        expect(result.command).toBe(expected.join('') + tail);
        expect(result.env).toEqual(Object.fromEntries([...names].map(([k, name]) => [name, params[`k${k}`]])));
      }),
    );
  });

  it('(d) resolution is deterministic: the same input gives the same outcome', () => {
    const template = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom('${tasks.src.output}', 'n=${tasks.src.output}', '${params.a}', 'x ${params.a.b} ${flow.id}', '${tasks.other.output}', '${secrets.S}-${task.attempt}', '${params.'),
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), template, { maxKeys: 5 }), fc.subarray([...ALL]), (output, value, roots) => {
        const scope = scopeOf(output, { a: { b: output } });
        const first = resolveReferences(value, scope, new Set(roots));
        const second = resolveReferences(structuredClone(value), scope, new Set(roots));
        expect(second).toEqual(first);
      }),
    );
  });

  it('finding references never throws, and each reference is the text between its offsets', () => {
    const piece = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('${', '}', '${tasks.', '${params.', '["', '"]', '.output', '[0]', '\\', "'", '${secrets.'));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (pieces) => {
        const text = pieces.join('');
        const { references } = findReferences(text);
        let last = 0;
        for (const r of references) {
          expect(text.slice(r.start, r.end)).toBe(r.text);
          expect(r.start).toBeGreaterThanOrEqual(last);
          last = r.end;
        }
      }),
    );
  });
});

describe('CEL: properties', () => {
  it('a JSON output read whole by a transform comes back equal (ints and doubles round-trip)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (output) => {
        const result = evaluateExpression('tasks.src.output', { tasks: { src: { output: output } }, params: {}, flow: { id: 'f' } });
        expect(result).toEqual({ ok: true, value: JSON.parse(JSON.stringify(output)) });
      }),
    );
  });

  it('checks field and index access on literals without throwing (found by the property below)', () => {
    for (const source of ['1.output', '1[2]', 'true.x', 'null["a"]', '2.5.x', '"s".output', '1.x.y == 2']) {
      expect(() => checkExpression(source, 'condition'), source).not.toThrow();
      expect(checkExpression(source, 'condition').ok, source).toBe(false);
    }
  });

  it('checking and evaluating arbitrary text never throws', () => {
    const token = fc.oneof(fc.string({ maxLength: 5 }), fc.constantFrom('tasks', '.', 'a', '.output', '[', ']', '"x"', '(', ')', '==', '&&', '1', '2.5', 'params', 'map(', 'x', ',', 'size', '!'));
    fc.assert(
      fc.property(fc.array(token, { maxLength: 16 }), (tokens) => {
        const source = tokens.join('');
        const bindings = { tasks: { a: { output: { x: 1 } } }, params: { l: [1, 2] }, flow: { id: 'f' } };
        expect(() => checkExpression(source, 'condition')).not.toThrow();
        expect(() => evaluateCondition(source, bindings)).not.toThrow();
        expect(() => evaluateExpression(source, bindings)).not.toThrow();
      }),
    );
  });
});
