import { fetch, type Agent } from 'undici';
import type { AttemptResult } from '@taskstream/domain';
import { refusalMessage } from '../steps/address-policy.js';
import { SsrfBlockedError } from '../steps/http.js';

/** One POST and how it went, with its duration. */
export interface Sent {
  result: AttemptResult;
  durationMs: number;
}

/**
 * Posts a webhook through the http steps' guarded dispatcher, so the same SSRF policy and allow
 * list apply. Redirects are not followed: a 3xx is an answer that is not 2xx, as the Standard
 * Webhooks convention has it. The answer's body is not read beyond what closing it takes.
 */
export async function postWebhook(dispatcher: Agent, url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<Sent> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', dispatcher, signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel().catch(() => undefined);
    return { result: { kind: 'answered', status: response.status }, durationMs: took() };
  } catch (error) {
    return { result: failureOf(error, timeoutMs), durationMs: took() };
  }
}

function failureOf(error: unknown, timeoutMs: number): AttemptResult {
  const blocked = causes(error).find((e): e is SsrfBlockedError => e instanceof SsrfBlockedError);
  if (blocked !== undefined) {
    const message = refusalMessage(blocked.host, { address: blocked.address, range: blocked.range }).replace(/^http step/, 'webhook').replace('TASKSTREAM_HTTP_ALLOW', 'TASKSTREAM_WEBHOOK_ALLOW');
    return { kind: 'refused', code: 'SSRF_BLOCKED', failure: message };
  }
  if ((error as Error)?.name === 'TimeoutError') return { kind: 'failed', failure: `no answer within ${timeoutMs / 1000}s` };
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return { kind: 'failed', failure: `request failed: ${cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error)}` };
}

function causes(error: unknown): unknown[] {
  const found: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && found.length < 5; e = (e as { cause?: unknown }).cause) found.push(e);
  return found;
}
