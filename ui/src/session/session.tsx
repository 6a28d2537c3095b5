import { TaskstreamClient } from '@taskstream/client';
import { createContext, useContext } from 'react';
import type { Scope, Whoami } from './whoami.js';

/** The signed-in client and what its key may do; every page reads it. */
export interface Session {
  client: TaskstreamClient;
  who: Whoami;
  /** Whether the key holds `scope`: actions show only for the scopes the key has. */
  can(scope: Scope): boolean;
  signOut(): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

/** A client of the gateway that served this page, with the key (the feeds send it as ?token=). */
export function clientFor(apiKey: string | undefined): TaskstreamClient {
  return new TaskstreamClient({ baseUrl: window.location.origin, ...(apiKey !== undefined && { apiKey }) });
}
