import { instantiateTemplate, validateTemplate, type FlowDefinition, type StoredTemplate } from '@taskstream/domain';
import { TemplateContentionError, TooManyTemplatesError, type TemplateStore } from '@taskstream/nats';
import { ApiError, apiError, ERRORS, type ErrorCode, type Problem } from './errors.js';
import type { Flows } from './flows.js';
import { shapeProblems } from './routes/input.js';

/** An error whose table message counts the problems, listed in `problems`. */
export function problemsOf(code: Extract<ErrorCode, 'INVALID_TEMPLATE' | 'INVALID_PARAMS' | 'INVALID_TRIGGER'>, problems: Problem[]): ApiError {
  return new ApiError(code, ERRORS[code].status, ERRORS[code].message(problems.length), { problems });
}

export interface TemplateRun {
  flowId: string;
  replayed: boolean;
  template: { name: string; version: number };
  tasks: number;
}

/**
 * Templates: stored through their bucket's owner, each change a new immutable version; a run is
 * the template's flow with the run's params (checked against its schema) submitted like any flow,
 * with the template's name and version recorded as its origin.
 */
export class Templates {
  constructor(
    readonly store: TemplateStore,
    private readonly flows: Flows,
  ) {}

  /** Validates and stores a template; `created` is false when it is the same as the latest version. */
  async put(name: string, input: unknown): Promise<{ template: StoredTemplate; created: boolean }> {
    const shape = shapeProblems(input, 1);
    if (shape.length > 0) throw problemsOf('INVALID_TEMPLATE', shape);
    const checked = validateTemplate(input);
    if (!checked.ok) throw problemsOf('INVALID_TEMPLATE', checked.problems);
    const tasks = (checked.template.flow.tasks as Array<{ id?: unknown }>) ?? [];
    const proto = tasks.findIndex((task) => task?.id === '__proto__');
    if (proto !== -1) throw problemsOf('INVALID_TEMPLATE', [{ path: `flow.tasks[${proto}].id`, message: '"__proto__" cannot be a task id (it names the prototype of every object); choose another' }]);
    try {
      return await this.store.put(name, checked.template);
    } catch (error) {
      if (error instanceof TooManyTemplatesError) throw apiError('LIMIT_REACHED', error.message);
      if (error instanceof TemplateContentionError) throw apiError('UNAVAILABLE', error.message.replace(/; try again$/, ''));
      throw error;
    }
  }

  /** Deletes a template and its versions, or the 404 when there is none. */
  async delete(name: string): Promise<void> {
    let deleted: boolean;
    try {
      deleted = await this.store.delete(name);
    } catch (error) {
      if (error instanceof TemplateContentionError) throw apiError('UNAVAILABLE', error.message.replace(/; try again$/, ''));
      throw error;
    }
    if (!deleted) throw apiError('TEMPLATE_NOT_FOUND', name);
  }

  /** A version of a template (the latest without one), or the 404 that says which is missing. */
  async resolve(name: string, version?: number): Promise<StoredTemplate> {
    const template = await this.store.resolve(name, version);
    if (template) return template;
    if (version !== undefined && (await this.store.latest(name))) throw apiError('TEMPLATE_VERSION_NOT_FOUND', name, version);
    throw apiError('TEMPLATE_NOT_FOUND', name);
  }

  /** The flow a run of `template` with `params` submits, or the 400 listing every problem of the params. */
  definition(template: StoredTemplate, params: unknown): FlowDefinition {
    const result = instantiateTemplate(template, params);
    if (!result.ok) throw problemsOf('INVALID_PARAMS', result.problems);
    return result.definition;
  }

  /** Submits a run of `name` (at `version`, else the latest). */
  async run(name: string, params: unknown, version?: number, idempotencyKey?: string, submittedBy?: string): Promise<TemplateRun> {
    const template = await this.resolve(name, version);
    const definition = this.definition(template, params);
    const origin = { template: { name, version: template.version } };
    const { flowId, replayed } = await this.flows.submit(definition, idempotencyKey, submittedBy, undefined, origin);
    return { flowId, replayed, template: origin.template, tasks: definition.tasks.length };
  }
}
