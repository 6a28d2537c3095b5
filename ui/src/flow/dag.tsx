import type { FlowView } from '@taskstream/client';
import type { TaskView } from '@taskstream/domain';
import { Background, Controls, ReactFlow, ReactFlowProvider, useReactFlow, type AriaLabelConfig, type Edge, type NodeChange } from '@xyflow/react';
import { useCallback, useEffect, useMemo } from 'react';
import { TASK_LOOK } from '../common/status.js';
import { layoutDag } from './layout.js';
import { TaskNodeView, type TaskNode } from './task-node.js';

const NODE_TYPES = { task: TaskNodeView };

/** What a screen reader is told a focused node does (React Flow's words speak of moving and deleting nodes, which this DAG does not do). */
const NODE_HELP = 'Press Enter or Space to show this task in the task panel.';
const ARIA_LABELS: Partial<AriaLabelConfig> = { 'node.a11yDescription.default': NODE_HELP, 'node.a11yDescription.keyboardDisabled': NODE_HELP };

interface DagProps {
  view: FlowView;
  selected: string | undefined;
  onSelect: (taskId: string) => void;
}

/** A node's accessible name: the task's id and, in words, its status (and what else the node shows). */
export function taskNodeLabel(task: TaskView): string {
  const named = task.name !== undefined && task.name !== task.id ? ` (${task.name})` : '';
  const attempts = task.attempts_total > 1 ? `, ${task.attempts_total} attempts` : '';
  return `Task ${task.id}${named}: ${TASK_LOOK[task.status].label}${attempts}${task.reused ? ', reused' : ''}`;
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
      view.tasks
        .map((task) => ({
          id: task.id,
          type: 'task' as const,
          position: placed.get(task.id) ?? { x: 0, y: 0 },
          data: { task, chosen: task.id === selected },
          // A button to the keyboard and to screen readers: Tab reaches it (nodesFocusable), Enter or Space chooses it.
          ariaRole: 'button' as const,
          ariaLabel: taskNodeLabel(task),
          domAttributes: { 'aria-pressed': task.id === selected },
          draggable: false,
          connectable: false,
          deletable: false,
        }))
        // Nodes are in the page (and so in the Tab order) as the layout places them: by column from left to right, top to bottom in each.
        .sort((a, b) => a.position.x - b.position.x || a.position.y - b.position.y),
    [view.tasks, placed, selected],
  );
  const edges = useMemo<Edge[]>(() => {
    const ids = new Set(view.tasks.map((t) => t.id));
    return view.tasks.flatMap((task) =>
      task.depends_on
        .filter((d) => ids.has(d))
        .map((d) => ({ id: `${d}->${task.id}`, source: d, target: task.id, animated: task.status === 'running' || task.status === 'dispatched', selectable: false, focusable: false })),
    );
  }, [view.tasks]);

  // React Flow's selection is only the event of choosing a node, the same for a click, Enter and Space. The
  // changes are never applied, so no node is ever selected in React Flow's store: the page's choice is the only one.
  const onNodesChange = useCallback(
    (changes: Array<NodeChange<TaskNode>>) => {
      const chosen = changes.findLast((change) => change.type === 'select' && change.selected);
      if (chosen?.type === 'select') onSelect(chosen.id);
    },
    [onSelect],
  );

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
        onNodesChange={onNodesChange}
        nodesDraggable={false}
        nodesConnectable={false}
        nodesFocusable
        edgesFocusable={false}
        elementsSelectable
        // One task at a time, chosen by a click or a key: no selection box, no multiple selection, nothing to delete.
        selectionKeyCode={null}
        multiSelectionKeyCode={null}
        deleteKeyCode={null}
        ariaLabelConfig={ARIA_LABELS}
        fitView
        minZoom={0.1}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
