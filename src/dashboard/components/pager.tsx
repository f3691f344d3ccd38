import { navigate } from '../router.js';

/**
 * Cursor pagination over the list endpoints (`limit` + `next_cursor`). The page's cursor is the
 * URL's `cursor`, and the cursors of the pages before it are kept in the URL too (`back`, joined
 * with `~`), so Previous works without any offset query and a reload or a shared link stays on
 * the same page. The first page has no cursor: `back` leaves it out and it is put back on reading.
 */

export interface PageAt {
  /** The cursor this page was read from; null on the first page. */
  cursor: string | null;
  /** The cursors of the earlier pages, oldest first (the first page's is ''). */
  back: string[];
}

/** Where a list is, from its URL query. */
export function pageAt(query: URLSearchParams): PageAt {
  const cursor = query.get('cursor') || null;
  const earlier = (query.get('back') ?? '').split('~').filter(Boolean);
  return { cursor, back: cursor ? ['', ...earlier] : [] };
}

/** The query keys that put a list back on its first page (with a filter changed, say). */
export const FIRST_PAGE = { cursor: null, back: null } as const;

/**
 * First / Previous / page n · count shown / Next. Moving keeps the view's other query keys
 * (`query`: its filters) and changes only `cursor` and `back`.
 */
export function Pager({
  at,
  next,
  count,
  route,
  query,
}: {
  at: PageAt;
  /** The `next_cursor` of the page on screen; none on the last page. */
  next: string | null | undefined;
  /** How many items the page on screen shows. */
  count: number;
  route: readonly string[];
  query: Readonly<Record<string, string | null | undefined>>;
}) {
  const { cursor, back } = at;
  const go = (c: string | null, b: string[]) =>
    navigate(route, { ...query, cursor: c, back: b.filter(Boolean).join('~') || null });
  return (
    <div class="pager">
      <button type="button" disabled={!cursor} onClick={() => go(null, [])}>
        First
      </button>
      <button
        type="button"
        disabled={!cursor}
        onClick={() => {
          const c = back[back.length - 1];
          go(c === undefined || c === '' ? null : c, back.slice(0, -1));
        }}
      >
        Previous
      </button>
      <span class="muted">
        page {back.length + 1} · {count} shown
      </span>
      <button
        type="button"
        data-testid="next-page"
        disabled={!next}
        onClick={() => go(next ?? null, [...back, cursor ?? ''])}
      >
        Next
      </button>
    </div>
  );
}
