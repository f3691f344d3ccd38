/**
 * A list's filter bar (`.filters`). A select applies as soon as it changes; text fields apply
 * together with the Filter button (or Enter), which is only there when the bar has one. The
 * values live in the URL: the view reads them from its query and `onChange` navigates.
 */

export type FilterField =
  | {
      type: 'select';
      name: string;
      label: string;
      options: readonly string[];
      /** A first option "any" (the value '') that filters nothing. */
      any?: boolean;
    }
  | { type: 'text'; name: string; label: string; placeholder: string };

/** The "Per page" select of the paginated lists (the API's `limit`). */
export const PER_PAGE: FilterField = {
  type: 'select',
  name: 'limit',
  label: 'Per page',
  options: ['50', '100', '500'],
};

export function Filters({
  fields,
  values,
  onChange,
}: {
  fields: readonly FilterField[];
  values: Readonly<Record<string, string>>;
  onChange(patch: Record<string, string>): void;
}) {
  const inputs = fields.map((f) =>
    f.type === 'select' ? (
      <label key={f.name}>
        {f.label}
        <select
          value={values[f.name] ?? ''}
          onChange={(e) => onChange({ [f.name]: (e.target as HTMLSelectElement).value })}
        >
          {f.any && <option value="">any</option>}
          {f.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </label>
    ) : (
      <label key={f.name}>
        {f.label}
        <input
          name={f.name}
          placeholder={f.placeholder}
          defaultValue={values[f.name] ?? ''}
          // A new value from the URL (back, a link) replaces what was typed.
          key={`${f.name}=${values[f.name] ?? ''}`}
        />
      </label>
    ),
  );
  const texts = fields.filter((f) => f.type === 'text');
  if (texts.length === 0) return <div class="filters">{inputs}</div>;
  return (
    <form
      class="filters"
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget as HTMLFormElement);
        onChange(Object.fromEntries(texts.map((f) => [f.name, String(form.get(f.name) ?? '')])));
      }}
    >
      {inputs}
      <button type="submit">Filter</button>
    </form>
  );
}
