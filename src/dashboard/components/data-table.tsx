import type { ComponentChildren } from 'preact';

/**
 * The views' tables (`table.table`): a header row and a row per item, described by columns. A
 * column gives its header and its cell; `num` right-aligns both (tabular figures), `class` adds
 * to the cell's class (`clip`), `field` marks the cell `data-field` and `title` gives it a
 * tooltip. `row` gives each row's own attributes (`data-job-id`, a `class`, a `title`), which is
 * what tests and live updates find rows by.
 */

export interface Column<T> {
  /** The header cell's content; none for a header-less column (row actions). */
  head?: ComponentChildren;
  /** Tells columns apart when the set changes (one column per parameter, say); the index otherwise. */
  key?: string;
  num?: boolean;
  class?: string;
  field?: string;
  title?(item: T): string | undefined;
  cell(item: T): ComponentChildren;
}

/** Attributes of a row's `<tr>`: `data-*` keys, `class` and `title`. */
export type RowAttributes = Readonly<Record<`data-${string}` | 'class' | 'title', string | undefined>>;

export function DataTable<T>({
  columns,
  rows,
  rowKey,
  row,
  empty,
  testid,
}: {
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  rowKey(item: T): string | number;
  row?(item: T): Partial<RowAttributes>;
  /** Shown in one muted row across the table when there are no rows; without it, no row. */
  empty?: ComponentChildren;
  testid?: string;
}) {
  const cls = (c: Column<T>) => [c.num ? 'num' : '', c.class ?? ''].filter(Boolean).join(' ') || undefined;
  return (
    <table class="table" data-testid={testid}>
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th key={c.key ?? i} class={c.num ? 'num' : undefined}>
              {c.head}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((item) => (
          <tr key={rowKey(item)} {...row?.(item)}>
            {columns.map((c, i) => (
              <td key={c.key ?? i} class={cls(c)} data-field={c.field} title={c.title?.(item)}>
                {c.cell(item)}
              </td>
            ))}
          </tr>
        ))}
        {rows.length === 0 && empty !== undefined && (
          <tr>
            <td colSpan={columns.length} class="muted">
              {empty}
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
