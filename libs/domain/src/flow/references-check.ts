import { checkExpression, collectReferences, type PathSegment } from '../expressions/index.js';
import type { TaskSpec } from './definition.js';

type Report = (path: ReadonlyArray<PropertyKey>, message: string) => void;

const quote = (text: string) => JSON.stringify(text.length > 64 ? `${text.slice(0, 63)}…` : text);

/** The fields of a task whose strings may hold `${...}` references. */
const REFERENCING_FIELDS = ['config', 'input'] as const;

/**
 * Checks, at submission, what a flow's references and expressions may name: a task only through
 * an ancestor (reachable through depends_on), a param only if the flow has it. Expressions must
 * parse and type-check. Reports every problem with its path; run only on a flow whose graph is valid.
 */
export function checkReferences(tasks: readonly TaskSpec[], indexOf: (id: string) => number, params: Record<string, unknown> | undefined, report: Report): void {
  const ancestry = new Ancestry(tasks);
  for (const task of tasks) {
    const index = indexOf(task.id);
    const named = (path: ReadonlyArray<PropertyKey>, target: string, via: string) => {
      if (target === task.id) report(path, `${via} reads the output of task ${quote(task.id)} itself; a task can only read the outputs of tasks upstream of it`);
      else if (!ancestry.has(target)) report(path, `${via} refers to ${quote(target)}, which is not a task in this flow`);
      else if (!ancestry.isAncestor(task.id, target)) {
        report(path, `${via} refers to ${quote(target)}, which is not upstream of ${quote(task.id)}; add ${quote(target)} to its depends_on (directly or through another task)`);
      }
    };
    for (const field of REFERENCING_FIELDS) {
      const value = task[field];
      if (value === undefined) continue;
      // A child flow written out in a trigger task is checked as a flow of its own (see validate.ts).
      const own = task.executor === 'trigger' && field === 'config' ? childFlowOf(task) : undefined;
      const { found, problems } = collectReferences(own === undefined ? value : { ...task.config, flow: null });
      for (const problem of problems) report(['tasks', index, field, ...problem.at], problem.message);
      for (const { at, reference } of found) {
        const path = ['tasks', index, field, ...at];
        if (task.executor === 'transform' && field === 'config' && at[0] === 'expr') {
          // Spliced into the expression as text, a value could change what it computes.
          report(path, `${reference.text}: a transform's expression reads upstream data itself; write tasks.<id>.output… (or params.…) in the expression instead of \${...}`);
          continue;
        }
        if (reference.root === 'tasks' && reference.taskId !== undefined) named(path, reference.taskId, reference.text);
        if (reference.root === 'artifacts' && reference.taskId !== undefined) {
          // A local path on the executor's host, which only a shell step's process can open.
          if (task.executor === 'shell') named(path, reference.taskId, reference.text);
          else report(path, `${reference.text}: an artifact reference becomes the path of a local copy of the file, which only shell steps can read; read it in a shell task`);
        }
        if (reference.root === 'params') checkParam(path, reference.text, reference.path, params, report);
      }
    }
    if (task.condition !== undefined) checkExpressionOf(['tasks', index, 'condition'], task.condition, 'condition', named, report);
    if (task.executor === 'transform' && typeof task.config.expr === 'string') {
      checkExpressionOf(['tasks', index, 'config', 'expr'], task.config.expr, 'transform', named, report);
    }
    if (task.executor === 'wait' && typeof task.config.match === 'string') {
      checkExpressionOf(['tasks', index, 'config', 'match'], task.config.match, 'match', named, report);
    }
    if (task.map !== undefined) checkExpressionOf(['tasks', index, 'map', 'items'], task.map.items, 'transform', named, report, 'map items');
  }
}

function childFlowOf(task: TaskSpec): object | undefined {
  const flow = task.config.flow;
  return flow !== null && typeof flow === 'object' && !Array.isArray(flow) ? flow : undefined;
}

function checkExpressionOf(
  path: ReadonlyArray<PropertyKey>,
  source: string,
  kind: 'condition' | 'transform' | 'match',
  named: (path: ReadonlyArray<PropertyKey>, target: string, via: string) => void,
  report: Report,
  label = `the ${kind} expression`,
): void {
  const checked = checkExpression(source, kind);
  if (!checked.ok) {
    const at = checked.column === undefined ? '' : checked.line !== undefined && checked.line > 1 ? `at line ${checked.line}, column ${checked.column}: ` : `at column ${checked.column}: `;
    report(path, `${at}${checked.message}`);
    return;
  }
  for (const id of checked.taskRefs) named(path, id, label);
}

/** A `${params.x...}` reference must name a param the flow has (deeper fields are checked at run time). */
function checkParam(path: ReadonlyArray<PropertyKey>, text: string, segments: readonly PathSegment[], params: Record<string, unknown> | undefined, report: Report): void {
  const first = segments[0];
  if (first === undefined) return;
  if (params === undefined || !Object.hasOwn(params, String(first))) {
    const known = Object.keys(params ?? {});
    const hint = known.length === 0 ? 'the flow has no params; add them to the submission as "params": {...}' : `the flow's params are ${known.slice(0, 10).map(quote).join(', ')}`;
    report(path, `${text} refers to param ${quote(String(first))}, which the flow does not have; ${hint}`);
  }
}

/** Whether one task is upstream of another, answered by a search that stops when it finds it. */
class Ancestry {
  private readonly deps: Map<string, readonly string[]>;

  constructor(tasks: readonly TaskSpec[]) {
    this.deps = new Map(tasks.map((t) => [t.id, t.depends_on]));
  }

  has(id: string): boolean {
    return this.deps.has(id);
  }

  isAncestor(of: string, candidate: string): boolean {
    const direct = this.deps.get(of) ?? [];
    if (direct.includes(candidate)) return true;
    const seen = new Set<string>(direct);
    const stack = [...direct];
    while (stack.length > 0) {
      for (const dep of this.deps.get(stack.pop()!) ?? []) {
        if (dep === candidate) return true;
        if (!seen.has(dep)) {
          seen.add(dep);
          stack.push(dep);
        }
      }
    }
    return false;
  }
}
