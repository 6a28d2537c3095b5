import type { FlowView } from '@taskstream/client';
import { Background, Controls, ReactFlow, ReactFlowProvider, useReactFlow, type Edge } from '@xyflow/react';
import { useEffect, useMemo } from 'react';
import { TASK_LOOK } from '../common/status.js';
import { layoutDag } from './layout.js';
import { TaskNodeView, type TaskNode } from './task-node.js';

const NODE_TYPES = { task: TaskNodeView };

interface DagProps {
  view: FlowView;
  selected: string | undefined;
  onSelect: (taskId: string) => void;
}

/** The flow's DAG, laid out by dagre, drawn by React Flow; nodes keep their places as statuses change, and tasks added while the flow runs join it. */
export function Dag(props: DagProps) {
  return (
    <ReactFlowProvider>
      <DagCanvas {...props} />
    </ReactFlowProvider>
  );
}

function DagCanvas({ view, selected, onSelect }: DagProps) {
  // Laid out again only when the DAG's shape changes (tasks added), not at each status change.
  const shape = JSON.stringify(view.tasks.map((t) => [t.id, t.depends_on]));
  const placed = useMemo(() => layoutDag((JSON.parse(shape) as Array<[string, string[]]>).map(([id, depends_on]) => ({ id, depends_on }))), [shape]);
  const nodes = useMemo<TaskNode[]>(
    () =>
      view.tasks.map((task) => ({
        id: task.id,
        type: 'task',
        position: placed.get(task.id) ?? { x: 0, y: 0 },
        data: { task, chosen: task.id === selected },
        ariaLabel: `Task ${task.id}: ${TASK_LOOK[task.status].label}`,
        draggable: false,
        connectable: false,
      })),
    [view.tasks, placed, selected],
  );
  const edges = useMemo<Edge[]>(() => {
    const ids = new Set(view.tasks.map((t) => t.id));
    return view.tasks.flatMap((task) =>
      task.depends_on.filter((d) => ids.has(d)).map((d) => ({ id: `${d}->${task.id}`, source: d, target: task.id, animated: task.status === 'running' || task.status === 'dispatched' })),
    );
  }, [view.tasks]);

  const flow = useReactFlow();
  useEffect(() => {
    void flow.fitView({ padding: 0.15, maxZoom: 1.2 });
  }, [flow, placed]);

  return (
    <div className="dag" role="group" aria-label="The flow's DAG">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        onNodeClick={(_event, node) => onSelect(node.id)}
        nodesDraggable={false}
        nodesConnectable={false}
        // The page keeps which task is chosen; React Flow's own selection would be a second, competing one.
        elementsSelectable={false}
        fitView
        minZoom={0.1}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

