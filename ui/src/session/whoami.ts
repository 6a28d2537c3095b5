import type { TaskstreamClient } from '@taskstream/client';

export type Scope = 'read' | 'submit' | 'admin';

/** GET /api/v1/whoami: what the key may do (every scope with keys off). */
export interface Whoami {
  auth: 'keys' | 'none';
  scope: Scope;
  scopes: Scope[];
  key?: { id: string; name: string; expires_at?: string };
}

export function whoami(client: TaskstreamClient): Promise<Whoami> {
  return client.transport.json<Whoami>({ method: 'GET', path: '/api/v1/whoami', idempotent: true });
}
