const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "1500ms", "15s", "5m", "1h" or a bare number of seconds into milliseconds. */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') return text * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new Error(`invalid duration "${text}" (use e.g. 500ms, 15s, 5m, 1h)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
}
