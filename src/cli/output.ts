/**
 * What the CLI commands share for output: aligned tables, JSON, `--json`-or-text views, relative
 * times, cursor-paginated listings and polling a resource until it reaches a final state.
 */
import type { Command } from 'commander';
import { sleep } from '../shared/sleep.js';
import { number } from './context.js';

export type Cell = string | number | null | undefined;

/** Prints rows as an aligned, plain-text table. */
export function table(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** Writes {@link table} of the rows to standard output. */
export function printTable(headers: string[], rows: Cell[][]): void {
  process.stdout.write(`${table(headers, rows)}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** With `json`, the value as JSON; otherwise `text(value)` as a line of standard output. */
export function printView<T>(value: T, json: boolean | undefined, text: (value: T) => string): void {
  if (json) printJson(value);
  else process.stdout.write(`${text(value)}\n`);
}

export function since(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

/** One page of a cursor-paginated API listing: its items under `key`, and the next page's cursor. */
export type ApiPage<K extends string, T> = { [P in K]: T[] } & { next_cursor: string | null };

/**
 * Reads the page at `cursor` (the first page when undefined) and, with `all`, every page after it.
 * Returns the items read and the cursor that continues after them (null once the end is reached).
 */
export async function readPages<K extends string, T>(
  key: K,
  cursor: string | undefined,
  all: boolean,
  read: (cursor: string | undefined) => Promise<ApiPage<K, T>>,
): Promise<{ items: T[]; next: string | null }> {
  const items: T[] = [];
  let at = cursor;
  for (;;) {
    const page = await read(at);
    items.push(...page[key]);
    if (!all || !page.next_cursor) return { items, next: page.next_cursor };
    at = page.next_cursor;
  }
}

/** The options every paginated `list` command takes (declared by {@link listingOptions}). */
export interface ListingOptions {
  limit?: number;
  cursor?: string;
  all?: boolean;
  json?: boolean;
}

/** Adds the paging and output options of {@link ListingOptions} to a `list` command. */
export function listingOptions(command: Command): Command {
  return command
    .option('--limit <n>', 'page size (default 100)', number('--limit'))
    .option('--cursor <cursor>', 'continue after this cursor')
    .option('--all', 'follow next_cursor to the end')
    .option('--json', 'print JSON');
}

/**
 * A paginated `list` command's output: one page (every page with --all), as JSON
 * (`{ <key>: [...], next_cursor }`) or as a table, then how to continue on standard error.
 */
export async function printListing<K extends string, T>(
  key: K,
  o: ListingOptions,
  read: (cursor: string | undefined) => Promise<ApiPage<K, T>>,
  headers: string[],
  row: (item: T) => Cell[],
): Promise<void> {
  const { items, next } = await readPages(key, o.cursor, o.all === true, read);
  if (o.json) return printJson({ [key]: items, next_cursor: next });
  printTable(headers, items.map(row));
  printMore(next);
}

/** When a listing stopped before its end, says how to go on (`more: --cursor ...`). */
export function printMore(next: string | null, stream: NodeJS.WritableStream = process.stderr): void {
  if (next) stream.write(`more: --cursor ${next}\n`);
}

export interface PollOptions<T> {
  /** Wait after the first read, in milliseconds. */
  delayMs: number;
  /** The wait doubles after each read up to this (default: `delayMs`, a fixed interval). */
  maxDelayMs?: number;
  /** Sees every read, the final one included. */
  onRead?: (value: T) => void;
}

/** Reads `read()` until `done` holds for what it returns, and returns that. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  o: PollOptions<T>,
): Promise<T> {
  for (let delay = o.delayMs; ; delay = Math.min(delay * 2, o.maxDelayMs ?? o.delayMs)) {
    const value = await read();
    o.onRead?.(value);
    if (done(value)) return value;
    await sleep(delay);
  }
}
