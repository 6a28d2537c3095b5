import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, Route, Router, Switch } from 'wouter';
import { ErrorMessage } from './common/components.js';
import { isUnauthorized } from './common/errors.js';
import { DeadLettersPage } from './actions/dead-letters-page.js';
import { SignalPage } from './actions/signal-page.js';
import { FlowPage } from './flow/flow-page.js';
import { FlowListPage } from './flows/flow-list-page.js';
import { QueuesPage } from './queues/queues-page.js';
import { clientFor, SessionContext, useSession, type Session } from './session/session.js';
import { SignIn } from './session/sign-in.js';
import { storedKey, storeKey } from './session/stored-key.js';
import { whoami, type Whoami } from './session/whoami.js';

type Gate = { state: 'checking' } | { state: 'signed-in'; key: string | undefined; who: Whoami } | { state: 'needs-key'; refusal?: unknown } | { state: 'failed'; error: unknown };

/** Checks a key (or none) with the gateway: signed in, asked for one, or the gateway's failure. */
async function check(key: string | undefined): Promise<Gate> {
  try {
    return { state: 'signed-in', key, who: await whoami(clientFor(key)) };
  } catch (error) {
    if (isUnauthorized(error)) return key === undefined ? { state: 'needs-key' } : { state: 'needs-key', refusal: error };
    return { state: 'failed', error };
  }
}

export function App() {
  const [gate, setGate] = useState<Gate>({ state: 'checking' });
  useEffect(() => {
    void check(storedKey()).then((result) => {
      if (result.state === 'needs-key') storeKey(undefined);
      setGate(result);
    });
  }, []);
  const signIn = useCallback(async (key: string) => {
    const result = await check(key);
    if (result.state === 'signed-in') storeKey(key);
    setGate(result);
  }, []);
  const signOut = useCallback(() => {
    storeKey(undefined);
    setGate({ state: 'needs-key' });
  }, []);
  const session = useMemo<Session | undefined>(() => {
    if (gate.state !== 'signed-in') return undefined;
    return { client: clientFor(gate.key), who: gate.who, can: (scope) => gate.who.scopes.includes(scope), signOut };
  }, [gate, signOut]);

  if (gate.state === 'checking') return <p className="loading">Connecting to the gateway…</p>;
  if (gate.state === 'needs-key') return <SignIn onKey={signIn} refusal={gate.refusal} />;
  if (gate.state === 'failed' || !session) {
    return (
      <main className="sign-in">
        <h1>Taskstream</h1>
        <ErrorMessage error={gate.state === 'failed' ? gate.error : undefined} />
        <button type="button" onClick={() => window.location.reload()}>
          Try again
        </button>
      </main>
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Router base="/ui">
        <Shell />
      </Router>
    </SessionContext.Provider>
  );
}

function Shell() {
  return (
    <>
      <a className="skip-link" href="#content">
        Skip to content
      </a>
      <Header />
      <main id="content" tabIndex={-1}>
        <Switch>
          <Route path="/flows/:id">{(params) => <FlowPage key={params.id} flowId={params.id} />}</Route>
          <Route path="/queues" component={QueuesPage} />
          <Route path="/signals" component={SignalPage} />
          <Route path="/dead-letters" component={DeadLettersPage} />
          <Route path="/" component={FlowListPage} />
          <Route>
            <p>No such page. <Link href="/">See the flows</Link>.</p>
          </Route>
        </Switch>
      </main>
    </>
  );
}

function Header() {
  const { who, can, signOut } = useSession();
  return (
    <header className="top-bar">
      <Link href="/" className="brand">
        Taskstream
      </Link>
      <nav aria-label="Main">
        <Link href="/">Flows</Link>
        <Link href="/queues">Queues</Link>
        {can('submit') && <Link href="/signals">Signals</Link>}
        {can('admin') && <Link href="/dead-letters">Dead letters</Link>}
      </nav>
      <span className="who" aria-label="Signed in as">
        {who.key ? `${who.key.name} (${who.scope})` : 'no API keys (loopback)'}
      </span>
      {who.auth === 'keys' && (
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      )}
    </header>
  );
}
