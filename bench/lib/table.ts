/** Plain-text tables for benchmark output: every column padded to its widest cell. */

export type Cell = string | number | null | undefined;

function text(c: Cell): string {
  if (c === null || c === undefined) return '';
  return typeof c === 'number' ? String(c) : c;
}

/** Numbers (and "123 x"-like figures) are right-aligned, everything else left-aligned. */
function isNumeric(s: string): boolean {
  return /^[-+]?[\d.,]+(\s*(%|x|s|ms|\/s))?$/.test(s.trim());
}

export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const cells = rows.map((r) => headers.map((_, i) => text(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => {
        const w = widths[i] ?? 0;
        return isNumeric(c) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...cells.map(line)].join('\n');
}

/** The same table as GitHub markdown (for bench/RESULTS.md), padded as Biome formats it. */
export function formatMarkdown(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const cells = [headers.map(esc), ...rows.map((r) => headers.map((_, i) => esc(text(r[i]))))];
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: readonly string[]): string =>
    `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head ?? []), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Prints the table; with `markdown`, the same table as markdown after a blank line. */
export function printTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  markdown = false,
): void {
  console.log(formatTable(headers, rows));
  if (markdown) console.log(`\n${formatMarkdown(headers, rows)}`);
}
