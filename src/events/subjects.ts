/**
 * Subjects and subject patterns (pure).
 *
 * An event type is a subject: dot-separated tokens (`job.state_changed`,
 * `pipeline.training.completed`). Patterns match as NATS subjects do: `*` matches exactly one
 * token, `>` (last token only) matches one or more. One rule kept from the relay's first
 * patterns: the bare pattern `*` means every event (NATS would match one-token subjects only, and
 * no event type has one token), so subscribers written as `relay.subscribe(name, '*', …)` keep
 * receiving everything.
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** True for a valid event type: one or more tokens of letters, digits, `_` and `-`. */
export function validEventType(type: string): boolean {
  return type.length > 0 && type.length <= 200 && type.split('.').every((t) => TOKEN.test(t));
}

/** Why a pattern is invalid, or null when it is valid. */
export function patternError(pattern: string): string | null {
  if (pattern.length === 0) return 'pattern is empty';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (t === '*') continue;
    if (t === '>') {
      if (i !== tokens.length - 1) return '">" may only be the last token';
      continue;
    }
    if (!TOKEN.test(t)) return `invalid token "${t}" (letters, digits, _ and - only, or * and >)`;
  }
  return null;
}

function matchTokens(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/** Whether `subject` matches `pattern` (see the module comment for `*` alone). */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === '*' || pattern === '>') return true;
  return matchTokens(pattern.split('.'), subject.split('.'));
}

/**
 * A matcher for one or more patterns, compiled once. Answers are memoised per subject: a
 * subscriber sees the same few event types over and over.
 */
export function compileMatcher(patterns: string | readonly string[]): (subject: string) => boolean {
  const list = typeof patterns === 'string' ? [patterns] : [...patterns];
  for (const p of list) {
    const err = patternError(p);
    if (err) throw new Error(`invalid subject pattern "${p}": ${err}`);
  }
  if (list.some((p) => p === '*' || p === '>')) return () => true;
  const compiled = list.map((p) => p.split('.'));
  const memo = new Map<string, boolean>();
  return (subject) => {
    let hit = memo.get(subject);
    if (hit === undefined) {
      const tokens = subject.split('.');
      hit = compiled.some((p) => matchTokens(p, tokens));
      if (memo.size >= 10_000) memo.clear();
      memo.set(subject, hit);
    }
    return hit;
  };
}

/**
 * The NATS filter subject for a pattern under `base` (e.g. `runplane.events`): the bare `*`
 * (every event) becomes `base.>`, anything else is appended as it is.
 */
export function natsFilter(base: string, pattern: string): string {
  return pattern === '*' || pattern === '>' ? `${base}.>` : `${base}.${pattern}`;
}
