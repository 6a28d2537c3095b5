import type { TaskView } from '@taskstream/domain';
import { Handle, Position, type NodeProps, type Node } from '@xyflow/react';
import { TASK_LOOK } from '../common/status.js';

export type TaskNode = Node<{ task: TaskView; chosen: boolean }, 'task'>;

/** A task in the DAG: its id, and its status as icon and word on the status's colour. */
export function TaskNodeView({ data }: NodeProps<TaskNode>) {
  const { task, chosen } = data;
  const look = TASK_LOOK[task.status];
  return (
    <div className={`task-node${chosen ? ' selected' : ''}`} data-task={task.id} data-status={task.status} style={{ background: look.fill, borderColor: look.border }}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="task-node-id" title={task.id}>
        {task.name ?? task.id}
      </div>
      <div className="task-node-status">
        <span aria-hidden="true">{look.icon}</span> {look.label}
        {task.attempts_total > 1 ? ` · ${task.attempts_total} attempts` : ''}
        {task.reused ? ' · reused' : ''}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}
