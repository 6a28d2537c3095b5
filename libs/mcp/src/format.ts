import { TaskstreamError } from '@taskstream/client';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** Largest text a tool answers with; more is cut, saying so. */
export const MAX_RESULT_CHARS = 100_000;

/** A resource URI of a flow's view, or of its events. */
export const flowUri = (flowId: string) => `taskstream://flows/${flowId}`;
export const eventsUri = (flowId: string) => `taskstream://flows/${flowId}/events`;
export const FLOW_SCHEMA_URI = 'taskstream://schemas/flow';

const URI = /^taskstream:\/\/flows\/([0-9A-HJKMNP-TV-Z]{26})(\/events)?$/;

/** The flow id a flow resource URI names, or undefined. */
export function flowOfUri(uri: string): string | undefined {
  return URI.exec(uri)?.[1];
}

function cut(text: string): string {
  return text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}\n… (cut at ${MAX_RESULT_CHARS} characters)` : text;
}

/** A tool's answer: the value as JSON text, and as structured content when it is an object. */
export function answer(value: unknown, extra: CallToolResult['content'] = []): CallToolResult {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return {
    content: [{ type: 'text', text: cut(text) }, ...extra],
    ...(typeof value === 'object' && value !== null && !Array.isArray(value) && text.length <= MAX_RESULT_CHARS && { structuredContent: value as Record<string, unknown> }),
  };
}

/** A tool's failure, as the model should read it: the code, what to do, and every problem with its path. */
export function failure(error: unknown): CallToolResult {
  if (error instanceof TaskstreamError) {
    const lines = [`${error.code}: ${error.message}`, ...error.problems.map((p) => `- ${p.path}: ${p.message}`)];
    return { isError: true, content: [{ type: 'text', text: cut(lines.join('\n')) }] };
  }
  return { isError: true, content: [{ type: 'text', text: `INTERNAL: ${(error as Error)?.message ?? String(error)}` }] };
}

/** Runs a tool's body, answering its failure as a tool error (never a protocol error). */
export async function guarded(run: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await run();
  } catch (error) {
    return failure(error);
  }
}

/** The last (or first) `max` characters of a text, and whether it was cut. */
export function bounded(text: string, max: number, tail: boolean): { text: string; cut: boolean } {
  if (text.length <= max) return { text, cut: false };
  return { text: tail ? text.slice(text.length - max) : text.slice(0, max), cut: true };
}
