import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { DEFAULT_QUEUE, FlowInput, TaskInput, type FlowDefinition, type TaskSpec } from './definition.js';
import { EXECUTOR_CONFIGS, EXECUTOR_NAMES, isExecutorName } from './executors.js';
import { findCycles } from './graph.js';

/** One thing wrong with a submitted flow: where (a JSON path such as `tasks[2].depends_on[0]`) and what to do. */
export interface Problem {
  path: string;
  message: string;
}

export type FlowParseResult = { ok: true; flow: FlowDefinition } | { ok: false; problems: Problem[] };

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '$' : out;
}

function zodProblems(error: z.ZodError, prefix: ReadonlyArray<PropertyKey> = []): Problem[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: formatPath([...prefix, ...issue.path, key]),
        message: `unknown field "${key}"; remove it or check its spelling`,
      }));
    }
    const path = formatPath([...prefix, ...issue.path]);
    const message =
      issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    return [{ path, message }];
  });
}

/**
 * Parses flow text (JSON or YAML). Syntax errors are reported as one problem with the position the
 * parser gives, so the user can find the typo.
 */
export function parseFlowText(text: string, format: 'json' | 'yaml' | 'auto' = 'auto'): FlowParseResult {
  let data: unknown;
  const asJson = format === 'json' || (format === 'auto' && /^\s*[[{]/.test(text));
  try {
    data = asJson ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const kind = asJson ? 'JSON' : 'YAML';
    return { ok: false, problems: [{ path: '$', message: `not valid ${kind}: ${(error as Error).message}` }] };
  }
  return validateFlow(data);
}

/** Validates a parsed flow and reports every problem at once. */
export function validateFlow(input: unknown): FlowParseResult {
  const problems: Problem[] = [];
  const flowResult = FlowInput.safeParse(input);
  if (!flowResult.success) {
    problems.push(...zodProblems(flowResult.error));
    const rawTasks = (input as { tasks?: unknown } | null)?.tasks;
    if (!Array.isArray(rawTasks)) return { ok: false, problems };
  }
  const flowFields = flowResult.success ? flowResult.data : undefined;
  const rawTasks = (flowFields?.tasks ?? (input as { tasks: unknown[] }).tasks) as unknown[];
  const flowQueue = flowFields?.queue ?? DEFAULT_QUEUE;

  const tasks: TaskSpec[] = [];
  const firstIndexOf = new Map<string, number>();
  rawTasks.forEach((raw, index) => {
    const parsed = TaskInput.safeParse(raw);
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, ['tasks', index]));
      return;
    }
    const task = parsed.data;
    const previous = firstIndexOf.get(task.id);
    if (previous !== undefined) {
      problems.push({
        path: formatPath(['tasks', index, 'id']),
        message: `duplicate task id "${task.id}" (also used by tasks[${previous}]); give every task its own id`,
      });
      return;
    }
    firstIndexOf.set(task.id, index);

    let config: Record<string, unknown> = {};
    if (!isExecutorName(task.executor)) {
      problems.push({
        path: formatPath(['tasks', index, 'executor']),
        message: `unknown executor "${task.executor}"; use one of ${EXECUTOR_NAMES.join(', ')}`,
      });
    } else {
      const configResult = EXECUTOR_CONFIGS[task.executor].safeParse(task.config ?? {});
      if (!configResult.success) problems.push(...zodProblems(configResult.error, ['tasks', index, 'config']));
      else config = configResult.data as Record<string, unknown>;
    }

    tasks.push({
      id: task.id,
      ...(task.name !== undefined && { name: task.name }),
      ...(task.description !== undefined && { description: task.description }),
      executor: task.executor,
      config,
      depends_on: [...new Set(task.depends_on ?? [])],
      ...(task.retries !== undefined && { retries: task.retries }),
      ...(task.timeout_secs !== undefined && { timeout_secs: task.timeout_secs }),
      ...(task.backoff !== undefined && { backoff: task.backoff }),
      queue: task.queue ?? flowQueue,
      priority: task.priority ?? 0,
      ...(task.concurrency_key !== undefined && { concurrency_key: task.concurrency_key }),
      ...(task.input !== undefined && { input: task.input }),
      ...(task.condition !== undefined && { condition: task.condition }),
    });
  });

  // Dependencies can only be judged against the ids that parsed.
  const known = new Set(tasks.map((t) => t.id));
  const declaredIds = rawTaskIds(rawTasks);
  for (const task of tasks) {
    const index = firstIndexOf.get(task.id)!;
    const declared = (rawTasks[index] as { depends_on?: string[] }).depends_on ?? [];
    declared.forEach((dep, depIndex) => {
      const path = formatPath(['tasks', index, 'depends_on', depIndex]);
      if (dep === task.id) {
        problems.push({ path, message: `task "${task.id}" depends on itself; remove "${dep}" from its depends_on` });
      } else if (!declaredIds.has(dep)) {
        problems.push({
          path,
          message: `task "${task.id}" depends on "${dep}", which is not a task in this flow; known ids: ${[...known].join(', ')}`,
        });
      }
    });
  }

  const graph = new Map(tasks.map((t) => [t.id, t.depends_on.filter((d) => known.has(d) && d !== t.id)]));
  for (const cycle of findCycles(graph)) {
    const first = cycle[0]!;
    problems.push({
      path: formatPath(['tasks', firstIndexOf.get(first)!, 'depends_on']),
      message: `dependency cycle ${cycle.join(' -> ')}; a flow must be acyclic, so remove one of these dependencies`,
    });
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    flow: {
      ...(flowFields?.name !== undefined && { name: flowFields.name }),
      ...(flowFields?.description !== undefined && { description: flowFields.description }),
      queue: flowQueue,
      ...(flowFields?.labels !== undefined && { labels: flowFields.labels }),
      ...(flowFields?.timeout_secs !== undefined && { timeout_secs: flowFields.timeout_secs }),
      ...(flowFields?.queue_config !== undefined && { queue_config: flowFields.queue_config }),
      tasks,
    },
  };
}

function rawTaskIds(rawTasks: unknown[]): Set<string> {
  const ids = new Set<string>();
  for (const raw of rawTasks) {
    const id = (raw as { id?: unknown } | null)?.id;
    if (typeof id === 'string') ids.add(id);
  }
  return ids;
}
