import { useCallback, useMemo, useState } from 'preact/hooks';
import { Api, ApiError } from './api.js';
import type { Principal } from './api-types.js';
import { href, useRoute } from './router.js';
import {
  OPERATING_ROLES,
  READING_ROLES,
  type Session,
  SessionContext,
  storedToken,
  storeToken,
  useSession,
} from './session.js';
import { ErrorBox, useLoad } from './ui.js';
import { AuditView } from './views/audit.js';
import { EndpointsView } from './views/endpoints.js';
import { JobsView } from './views/jobs.js';
import { OverviewView } from './views/overview.js';
import { PipelinesView } from './views/pipelines.js';
import { PodsView } from './views/pods.js';
import { RunsView } from './views/runs.js';
import { SweepsView } from './views/sweeps.js';
import { WorkersView } from './views/workers.js';

/** The shell: login, navigation, and one view per area (each in its own file under views/). */

const AREAS = [
  ['overview', 'Overview'],
  ['jobs', 'Jobs'],
  ['workers', 'Workers'],
  ['endpoints', 'Endpoints'],
  ['runs', 'Runs'],
  ['audit', 'Audit'],
  ['sweeps', 'Sweeps'],
  ['pods', 'Pods'],
  ['pipelines', 'Pipelines'],
] as const;

export function App() {
  const [token, setToken] = useState<string | null>(storedToken);
  const logout = useCallback(() => {
    storeToken(null);
    setToken(null);
  }, []);
  if (!token) {
    return (
      <Login
        onToken={(t) => {
          storeToken(t);
          setToken(t);
        }}
      />
    );
  }
  return <Authenticated key={token} token={token} logout={logout} />;
}

function Authenticated({ token, logout }: { token: string; logout(): void }) {
  const api = useMemo(() => new Api(token, logout), [token, logout]);
  const me = useLoad((signal) => api.get<Principal>('/whoami', undefined, signal), [api]);
  if (me.error) {
    // whoami is a read route: a worker, learner or simulator token is refused it (403).
    const refused = me.error instanceof ApiError && me.error.status === 403;
    return (
      <div class="login">
        <h1>runplane</h1>
        {refused ? (
          <div class="error">
            This token's role cannot read the dashboard: log in with an admin, operator or viewer token.
          </div>
        ) : (
          <ErrorBox error={me.error} />
        )}
        <button type="button" onClick={logout}>
          Log in again
        </button>
      </div>
    );
  }
  if (!me.data) return <p class="muted boot">Loading…</p>;
  const principal = me.data;
  if (!READING_ROLES.has(principal.role)) {
    return (
      <div class="login">
        <h1>runplane</h1>
        <div class="error">
          A {principal.role} token cannot read the dashboard: log in with an admin, operator or viewer token.
        </div>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </div>
    );
  }
  const session: Session = { api, principal, canOperate: OPERATING_ROLES.has(principal.role), logout };
  return (
    <SessionContext.Provider value={session}>
      <Shell />
    </SessionContext.Provider>
  );
}

function Shell() {
  const s = useSession();
  const route = useRoute();
  const area = route.parts[0] ?? 'overview';
  return (
    <div class="shell">
      <nav class="nav">
        <div class="brand">runplane</div>
        {AREAS.map(([key, label]) => (
          <a key={key} href={href([key])} class={area === key ? 'active' : ''} data-nav={key}>
            {label}
          </a>
        ))}
        <div class="whoami" data-testid="whoami">
          <span>{s.principal.name}</span>
          <span class="badge tone-idle" data-role={s.principal.role}>
            {s.principal.role}
          </span>
          <button type="button" class="link" onClick={s.logout}>
            Log out
          </button>
        </div>
      </nav>
      <main class="main">
        <AreaView area={area} />
      </main>
    </div>
  );
}

function AreaView({ area }: { area: string }) {
  const route = useRoute();
  switch (area) {
    case 'overview':
      return <OverviewView />;
    case 'jobs':
      return <JobsView route={route} />;
    case 'workers':
      return <WorkersView />;
    case 'endpoints':
      return <EndpointsView route={route} />;
    case 'runs':
      return <RunsView route={route} />;
    case 'audit':
      return <AuditView route={route} />;
    case 'sweeps':
      return <SweepsView route={route} />;
    case 'pods':
      return <PodsView route={route} />;
    case 'pipelines':
      return <PipelinesView route={route} />;
    default:
      return <p>Unknown page.</p>;
  }
}

function Login({ onToken }: { onToken(token: string): void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const t = value.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    try {
      // Check the token before keeping it, so a typo says so here rather than on every view.
      await new Api(t).get<Principal>('/whoami');
      onToken(t);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? new ApiError(401, err.code, 'That token is not valid (or has been revoked).')
          : err,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="login">
      <h1>runplane</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          API token
          <input
            name="token"
            type="password"
            autocomplete="off"
            value={value}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
            placeholder="paste a token (runplane token create --role viewer)"
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          Log in
        </button>
      </form>
      <ErrorBox error={error} />
      <p class="muted">
        The token stays in this tab (sessionStorage) and is sent only to this controller's API. An admin token
        is in <code>&lt;data dir&gt;/admin.token</code>.
      </p>
    </div>
  );
}
