import { describe, expect, it } from 'vitest';
import { ownerOf, summarise } from '../src/profile.js';

describe('CPU profile summary', () => {
  it('attributes frames to npm packages, Taskstream packages, Node and V8', () => {
    expect(ownerOf('file:///srv/app/node_modules/zod/lib/types.js', 'parse')).toBe('zod');
    expect(ownerOf('file:///srv/app/node_modules/@nats-io/jetstream/lib/jsclient.js', 'publish')).toBe('@nats-io/jetstream');
    expect(ownerOf('file:///srv/app/libs/domain/dist/index.js', 'evolve')).toBe('taskstream libs/domain');
    expect(ownerOf('file:///srv/app/services/planner/dist/main.js', 'decide')).toBe('taskstream services/planner');
    expect(ownerOf('node:internal/streams/readable', 'read')).toBe('node internals');
    expect(ownerOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(ownerOf('', 'JSONParse')).toBe('V8 builtins');
  });

  it('shares busy time by self time, leaving idle out', () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
    const summary = summarise('planner', {
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('parse', 'file:///a/node_modules/zod/index.js') },
        { id: 4, callFrame: frame('evolve', 'file:///a/libs/domain/dist/index.js') },
      ],
      samples: [2, 3, 3, 4, 2, 3],
      timeDeltas: [5000, 1000, 1000, 1000, 5000, 1000],
    });
    expect(summary.busy_ms).toBe(4);
    expect(summary.by_owner).toEqual([
      { owner: 'zod', share: 75 },
      { owner: 'taskstream libs/domain', share: 25 },
    ]);
    expect(summary.top_functions[0]).toEqual({ name: 'parse zod/index.js:1', owner: 'zod', share: 75 });
  });
});
