import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './api.js';
import type { Principal } from './api-types.js';

/**
 * Who is logged in. The token lives in sessionStorage (gone when the tab closes, never sent
 * anywhere but the API's Authorization header); the role comes from `GET /api/v1/whoami`.
 */
const TOKEN_KEY = 'runplane.token';

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

/** Roles that may act (submit, terminate, command runs, retry dead letters); others only read. */
export const OPERATING_ROLES: ReadonlySet<string> = new Set(['admin', 'operator']);
/** Roles the dashboard serves at all: the API gives workers, learners and simulators nothing to read. */
export const READING_ROLES: ReadonlySet<string> = new Set(['admin', 'operator', 'viewer']);

export interface Session {
  api: Api;
  principal: Principal;
  /** Action buttons are rendered only when true (the API would refuse them with 403 anyway). */
  canOperate: boolean;
  logout(): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a session');
  return s;
}
