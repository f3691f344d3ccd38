import type { ComponentChildren } from 'preact';
import { href } from '../router.js';
import { type Loaded, LoadState } from '../ui.js';

/**
 * One item's page (a job, a run, a sweep, a pod): a link back to its list, the load's state
 * (loading, error, not available) and, once loaded, the content. The section is marked
 * `data-view` and, with its data, `data-view-ready` (what tests wait on).
 */
export function Detail<T>({
  view,
  back,
  backLabel,
  state,
  what,
  children,
}: {
  view: string;
  /** The list's route, and the link's text. */
  back: readonly string[];
  backLabel: string;
  state: Loaded<T>;
  what: string;
  children(item: T): ComponentChildren;
}) {
  const item = state.data;
  return (
    <section data-view={view} data-view-ready={item !== undefined ? view : undefined}>
      <p>
        <a href={href(back)}>{`← ${backLabel}`}</a>
      </p>
      <LoadState state={state} what={what} />
      {item !== undefined && children(item)}
    </section>
  );
}
