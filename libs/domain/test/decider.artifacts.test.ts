import { describe, expect, it } from 'vitest';
import { decide, fold, toFlowView } from '../src/index.js';
import { definition, ev, FLOW, stamp } from './fixtures.js';

const SHA = 'a'.repeat(64);
const stored = (task: string, name: string, attempt = 1, bytes = 10) =>
  stamp({ type: 'task.artifact_stored', flow_id: FLOW, task_id: task, attempt, data: { name, bytes, sha256: SHA, object: `${FLOW}/${task}/${attempt}/${name}` } });

describe('artifacts stored by a task', () => {
  const def = definition([{ id: 'extract' }, { id: 'load', depends_on: ['extract'] }]);
  const start = [ev.submitted(def), ev.started(), ev.ready('extract', def), ev.taskStarted('extract')];

  it('are folded by name, a later attempt replacing an earlier file, and shown in name order', () => {
    const state = fold([...start, stored('extract', 'rows.csv'), stored('extract', 'a/report.txt'), stored('extract', 'rows.csv', 2, 99), ev.succeeded('extract', 2)])!;
    expect(state.tasks.extract!.artifacts!['rows.csv']).toMatchObject({ bytes: 99, attempt: 2 });
    const view = toFlowView(state).tasks.find((t) => t.id === 'extract')!;
    expect(view.artifacts).toEqual([
      { name: 'a/report.txt', bytes: 10, sha256: SHA, attempt: 1 },
      { name: 'rows.csv', bytes: 99, sha256: SHA, attempt: 2 },
    ]);
    expect(toFlowView(state).tasks.find((t) => t.id === 'load')!.artifacts).toBeUndefined();
  });

  it('decide nothing themselves, and are ignored once the task has ended', () => {
    const running = fold(start)!;
    expect(decide(running, stored('extract', 'rows.csv'))).toEqual([]);
    const ended = fold([...start, ev.succeeded('extract'), stored('extract', 'late.bin')])!;
    expect(ended.tasks.extract!.artifacts).toBeUndefined();
  });
});
