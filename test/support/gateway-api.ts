import { waitFor } from '@taskstream/testing';

const ENDED = ['succeeded', 'failed', 'cancelled'];
/** Longer than any read of a view or history takes, even of a 10,000-task flow on a loaded machine. */
const READ_MS = 20_000;

/**
 * What an e2e test asks a gateway most: submit a flow, read its view, its tasks and its events,
 * and wait for a task's status or the flow's end. `base` is read at each call (a test may switch
 * gateways, or learn the URL only once its deployment started).
 */
export function gatewayApi(base: () => string) {
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> => {
    const response = await fetch(`${base()}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const submit = async (flow: unknown): Promise<string> => {
    const { status, body } = await post('/api/v1/flows', flow);
    if (status !== 202) throw new Error(`submission failed: ${status} ${JSON.stringify(body)}`);
    return body.flow_id;
  };
  // A read the gateway never answers fails the test at once, naming the read, instead of at its timeout.
  const get = async (path: string): Promise<any> => {
    const response = await fetch(`${base()}${path}`, { signal: AbortSignal.timeout(READ_MS) }).catch((error: Error) => {
      throw new Error(`GET ${path} failed: ${error.message}`, { cause: error });
    });
    return response.json();
  };
  const view = async (id: string): Promise<any> => get(`/api/v1/flows/${id}`);
  const taskOf = async (id: string, task: string): Promise<any> => (await view(id)).tasks?.find((t: any) => t.id === task);
  /** The flow's events as stored, each with its stream sequence. */
  const stored = async (id: string): Promise<Array<{ seq: number; event: any }>> => (await get(`/api/v1/flows/${id}/events`)).events;
  const events = async (id: string): Promise<any[]> => (await stored(id)).map((e) => e.event);
  const settled = (id: string, timeoutMs = 30_000): Promise<any> =>
    waitFor(`flow ${id} to finish`, async () => {
      const v = await view(id);
      return ENDED.includes(v?.status) ? v : undefined;
    }, timeoutMs, 100);
  const statusIs = (id: string, task: string, status: string, timeoutMs = 20_000): Promise<any> =>
    waitFor(`task ${task} of ${id} to be ${status}`, async () => {
      const t = await taskOf(id, task);
      return t?.status === status ? t : undefined;
    }, timeoutMs, 100);
  const statuses = (v: any): Record<string, string> => Object.fromEntries(v.tasks.map((t: any) => [t.id, t.status]));
  return { post, submit, view, taskOf, stored, events, settled, statusIs, statuses };
}
