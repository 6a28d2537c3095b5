import { ULID_PATTERN } from '@taskstream/domain';
import { ArtifactStore, foldFlowHistory } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { apiError } from './errors.js';

/** An artifact as the API lists it. */
export interface ListedArtifact {
  name: string;
  /** The task that stored it. */
  task: string;
  bytes: number;
  sha256: string;
  /** The attempt that stored it. */
  attempt: number;
}

/** An artifact being downloaded: what it is, and its content as it is read from the store. */
export interface OpenedArtifact extends ListedArtifact {
  data: ReadableStream<Uint8Array>;
}

/**
 * A flow's artifacts, for the API: listed from the flow folded from its log (the truth, as the
 * approvals read it, never a view that may lag), each the latest file its task stored under that
 * name, and read from the artifacts store. Names are per task: the same name stored by two tasks is
 * addressed with `task`.
 */
export class FlowArtifacts {
  private store: Promise<ArtifactStore> | undefined;

  constructor(private readonly ctx: ServiceContext) {}

  /** Every artifact of the flow, task by task (the flow's order), each task's by name. */
  async list(flowId: string, task?: string): Promise<ListedArtifact[]> {
    return (await this.records(flowId, task)).map(({ object: _object, ...listed }) => listed);
  }

  /** The artifact and its content, as it is read from the store. */
  async open(flowId: string, name: string, task?: string): Promise<OpenedArtifact> {
    const { object, ...artifact } = await this.find(flowId, name, task);
    const stored = await (await this.opened()).get(object);
    if (stored === null) throw gone(flowId, name);
    return { ...artifact, data: stored.data };
  }

  /** The artifact, without reading its content (for HEAD): still in the store, or ARTIFACT_NOT_FOUND. */
  async describe(flowId: string, name: string, task?: string): Promise<ListedArtifact> {
    const { object, ...artifact } = await this.find(flowId, name, task);
    if ((await (await this.opened()).info(object)) === null) throw gone(flowId, name);
    return artifact;
  }

  private async find(flowId: string, name: string, task: string | undefined): Promise<ListedArtifact & { object: string }> {
    const found = (await this.records(flowId, task)).filter((a) => a.name === name);
    if (found.length === 0) throw apiError('ARTIFACT_NOT_FOUND', flowId, name, task === undefined ? 'no task of it stored a file by that name' : `task "${task}" stored no file by that name`);
    if (found.length > 1) throw apiError('ARTIFACT_AMBIGUOUS', name, found.map((a) => a.task));
    return found[0]!;
  }

  /** The store, opened at the first download; a failed open is tried again at the next. */
  private opened(): Promise<ArtifactStore> {
    return (this.store ??= ArtifactStore.open(this.ctx.js, this.ctx.topo).catch((error: unknown) => {
      this.store = undefined;
      throw error;
    }));
  }

  private async records(flowId: string, task: string | undefined): Promise<Array<ListedArtifact & { object: string }>> {
    if (!ULID_PATTERN.test(flowId)) throw apiError('FLOW_NOT_FOUND', flowId);
    const state = await foldFlowHistory(this.ctx.js, this.ctx.topo, flowId);
    if (state === null) throw apiError('FLOW_NOT_FOUND', flowId);
    if (task !== undefined && !Object.hasOwn(state.tasks, task)) throw apiError('TASK_NOT_FOUND', flowId, task);
    const listed: Array<ListedArtifact & { object: string }> = [];
    for (const { id, artifacts = {} } of Object.values(state.tasks)) {
      if (task !== undefined && id !== task) continue;
      for (const name of Object.keys(artifacts).sort()) {
        const { bytes, sha256, attempt, object } = artifacts[name]!;
        listed.push({ name, task: id, bytes, sha256, attempt, object });
      }
    }
    return listed;
  }
}

function gone(flowId: string, name: string) {
  return apiError('ARTIFACT_NOT_FOUND', flowId, name, "its file is no longer in the artifacts store (deleted or expired with the flow's retention)");
}
