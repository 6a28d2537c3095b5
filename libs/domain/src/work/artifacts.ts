import type { TaskSpec } from '../flow/definition.js';

/*
 * Artifacts: files a shell step leaves in its artifacts directory ($TASKSTREAM_ARTIFACTS), stored
 * per task in the artifacts object store and recorded as task.artifact_stored. Their names are
 * user input that becomes object names, local paths, URL paths and download file names, so one
 * rule, checked here, holds wherever a name enters: the executor's walk of the directory, a
 * `${tasks.<id>.artifacts.<name>}` reference, and the gateway's routes.
 */

/** Characters of a whole name, `/` included. */
export const MAX_ARTIFACT_NAME_CHARS = 512;
/** Characters of one part between `/`: within a URL path segment and a file name everywhere. */
export const MAX_ARTIFACT_PART_CHARS = 128;
/** Directories a name may go down. */
export const MAX_ARTIFACT_DEPTH = 16;

/** Letters and digits of any script, space, and `. _ - + = @ , ~`. */
const PART = /^[\p{L}\p{N}._+=@,~ -]+$/u;

/** What a stored artifact is, as a reference binds it: where it is and what it holds. */
export interface ArtifactBinding {
  /** The object's name in the artifacts store. */
  object: string;
  bytes: number;
  sha256: string;
}

/**
 * Why `name` cannot be an artifact's name, or undefined when it can: a relative path of parts
 * joined by `/`, each of letters, digits, spaces and `. _ - + = @ , ~`, none `.` or `..`, none
 * starting or ending with a space; bounded in length and depth.
 */
export function artifactNameProblem(name: string): string | undefined {
  const rule = 'an artifact name is a relative path of parts joined by "/", each made of letters, digits, spaces and . _ - + = @ , ~';
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_ARTIFACT_NAME_CHARS) return `is ${name.length} characters long, over the limit of ${MAX_ARTIFACT_NAME_CHARS}`;
  const parts = name.split('/');
  if (parts.length > MAX_ARTIFACT_DEPTH) return `is ${parts.length} levels deep, over the limit of ${MAX_ARTIFACT_DEPTH}`;
  for (const part of parts) {
    if (part === '') return `has an empty part (a leading, trailing or doubled "/"); ${rule}`;
    if (part === '.' || part === '..') return `has a "${part}" part; ${rule}, none of them "." or ".."`;
    if (part.length > MAX_ARTIFACT_PART_CHARS) return `has a part of ${part.length} characters, over the limit of ${MAX_ARTIFACT_PART_CHARS}`;
    if (!PART.test(part)) return `holds a character outside the rule; ${rule}`;
    if (part.startsWith(' ') || part.endsWith(' ')) return `has a part starting or ending with a space; ${rule}`;
  }
  return undefined;
}

/**
 * The object an attempt's artifact is stored under: `<flow id>/<task id, percent-encoded>/<attempt>/<name>`.
 * Each attempt's files are distinct objects, never replaced: the digest an event records always
 * matches its object, and a later attempt's file supersedes an earlier one's by name in the fold.
 */
export function artifactObjectName(flowId: string, taskId: string, attempt: number, name: string): string {
  return `${flowId}/${encodeURIComponent(taskId)}/${attempt}/${name}`;
}

/** An artifact a task reads through `${tasks.<id>.artifacts.<name>}`, as the planner bound it in task.ready. */
export interface ArtifactInput extends ArtifactBinding {
  task: string;
  name: string;
}

/** The artifacts an attempt must fetch before it runs: those its run-time strings name, as bound by the planner. */
export function artifactInputsOf(spec: TaskSpec): ArtifactInput[] {
  const inputs: ArtifactInput[] = [];
  for (const [task, bound] of Object.entries(spec.bindings?.tasks ?? {})) {
    for (const [name, artifact] of Object.entries(bound.artifacts ?? {})) inputs.push({ task, name, ...artifact });
  }
  return inputs;
}
