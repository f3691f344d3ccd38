import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routing (`#/runs/run_01…?status=running`): the server serves one page at `/`, and a
 * view's filters and page cursor live in the URL, so reload, back and a shared link all work.
 */
export interface Route {
  /** Path segments after `#/`, decoded: `#/runs/abc` → ['runs', 'abc']. */
  parts: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => decodeURIComponent(p));
  return { parts, query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)) };
}

/** A link target: `href(['runs', id], {tab: 'audit'})` → `#/runs/<id>?tab=audit`. */
export function href(
  parts: readonly string[],
  query: Record<string, string | null | undefined> = {},
): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const qs = p.toString();
  return `#/${parts.map((x) => encodeURIComponent(x)).join('/')}${qs ? `?${qs}` : ''}`;
}

export function navigate(
  parts: readonly string[],
  query: Record<string, string | null | undefined> = {},
): void {
  location.hash = href(parts, query);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
