/** Graph helpers over `id -> depends_on` maps. Inputs are assumed free of unknown ids. */
export type DependencyMap = ReadonlyMap<string, readonly string[]>;

/**
 * Every cycle as a closed path (`['a', 'b', 'c', 'a']`), one per strongly connected component,
 * found with Tarjan's algorithm (iteratively, so deep graphs do not exhaust the stack).
 */
export function findCycles(deps: DependencyMap): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowlink = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];

  for (const root of deps.keys()) {
    if (indices.has(root)) continue;
    const work: Array<{ node: string; next: number }> = [{ node: root, next: 0 }];
    indices.set(root, index);
    lowlink.set(root, index++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = deps.get(frame.node) ?? [];
      if (frame.next < edges.length) {
        const target = edges[frame.next++]!;
        if (!indices.has(target)) {
          indices.set(target, index);
          lowlink.set(target, index++);
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, next: 0 });
        } else if (onStack.has(target)) {
          lowlink.set(frame.node, Math.min(lowlink.get(frame.node)!, indices.get(target)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        lowlink.set(parent, Math.min(lowlink.get(parent)!, lowlink.get(frame.node)!));
      }
      if (lowlink.get(frame.node) === indices.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = (deps.get(frame.node) ?? []).includes(frame.node);
        if (component.length > 1 || selfLoop) components.push(component);
      }
    }
  }
  return components.map((component) => cycleWithin(deps, new Set(component)));
}

/** A concrete closed walk inside one strongly connected component, starting at its smallest id, in time linear in its edges. */
function cycleWithin(deps: DependencyMap, members: ReadonlySet<string>): string[] {
  let start: string | undefined;
  for (const member of members) if (start === undefined || member < start) start = member;
  const parent = new Map<string, string>();
  const queue = [start!];
  const seen = new Set([start!]);
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head]!;
    for (const next of deps.get(node) ?? []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[path.length - 1] !== start) path.push(parent.get(path[path.length - 1]!)!);
        return [...path.reverse(), start];
      }
      if (!seen.has(next)) {
        seen.add(next);
        parent.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start!, start!];
}

/** Kahn's algorithm; ties keep declaration order so the result is stable. Assumes no cycle. */
export function topologicalOrder(deps: DependencyMap): string[] {
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const [id, ds] of deps) {
    remaining.set(id, ds.length);
    for (const d of ds) {
      const list = dependents.get(d);
      if (list) list.push(id);
      else dependents.set(d, [id]);
    }
  }
  const order: string[] = [];
  const ready = [...deps.keys()].filter((id) => remaining.get(id) === 0);
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i]!;
    order.push(id);
    for (const dependent of dependents.get(id) ?? []) {
      const left = remaining.get(dependent)! - 1;
      remaining.set(dependent, left);
      if (left === 0) ready.push(dependent);
    }
  }
  return order;
}

/** Every task reachable downstream of `from` (not including it). */
export function descendantsOf(dependents: ReadonlyMap<string, readonly string[]>, from: string): Set<string> {
  const found = new Set<string>();
  const queue = [...(dependents.get(from) ?? [])];
  while (queue.length > 0) {
    const id = queue.pop()!;
    if (found.has(id)) continue;
    found.add(id);
    queue.push(...(dependents.get(id) ?? []));
  }
  return found;
}

export function dependentsMap(deps: DependencyMap): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const id of deps.keys()) result.set(id, []);
  for (const [id, ds] of deps) for (const d of ds) result.get(d)?.push(id);
  return result;
}
