import { Graph, layout } from '@dagrejs/dagre';

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 58;

export interface Placed {
  id: string;
  x: number;
  y: number;
}

/**
 * Places the DAG's tasks left to right with dagre: each task after its dependencies. React Flow
 * puts a node by its top-left corner, dagre gives centres. Dependencies on tasks the flow does not
 * show (a view lists at most 1,000 per task) are left out.
 */
export function layoutDag(tasks: ReadonlyArray<{ id: string; depends_on: readonly string[] }>): Map<string, Placed> {
  const graph = new Graph();
  graph.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 60, marginx: 16, marginy: 16 });
  graph.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(tasks.map((t) => t.id));
  for (const task of tasks) graph.setNode(task.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const task of tasks) for (const dependency of task.depends_on) if (ids.has(dependency)) graph.setEdge(dependency, task.id);
  layout(graph);
  const placed = new Map<string, Placed>();
  for (const id of ids) {
    const node = graph.node(id) as { x: number; y: number };
    placed.set(id, { id, x: node.x - NODE_WIDTH / 2, y: node.y - NODE_HEIGHT / 2 });
  }
  return placed;
}
