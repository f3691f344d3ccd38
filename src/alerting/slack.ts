/**
 * The Slack incoming-webhook message for run liveness (pure). Slack takes `{text, blocks}`:
 * `text` is the fallback shown in notifications, `blocks` the Block Kit layout (section with
 * mrkdwn text and fields, then a context line). It answers 200 `ok`; 400 `invalid_payload`,
 * 403, 404 `no_service`/`channel_not_found` and 410 `channel_is_archived` will not improve by
 * retrying; 429 and 5xx will.
 */
import type { StoredEvent } from '../events/catalog.js';
import { runUrl, type SlackAlert } from './model.js';

export interface SlackContext {
  publicUrl: string | null;
  staleAfterMs: number;
  unresponsiveAfterMs: number;
}

interface MrkdwnText {
  type: 'mrkdwn';
  text: string;
}
type Block =
  | { type: 'section'; text: MrkdwnText; fields?: MrkdwnText[] }
  | { type: 'context'; elements: MrkdwnText[] };

export interface SlackMessage {
  text: string;
  blocks: Block[];
}

/** Slack's mrkdwn treats these three as control characters; user text must not inject links or mentions. */
export function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const secs = (ms: number) => `${Math.round(ms / 1000)} s`;
const show = (v: number | null) => (v === null ? '—' : String(v));
const md = (text: string): MrkdwnText => ({ type: 'mrkdwn', text });

export function slackMessage(alert: SlackAlert, ev: StoredEvent, ctx: SlackContext): SlackMessage {
  const run = alert.run;
  const id = slackEscape(run.run_id);
  const url = runUrl(ctx.publicUrl, run.run_id);
  const context = md(
    [
      'runplane',
      url ? `<${url}|run ${id}>` : `run ${id}`,
      `event ${slackEscape(ev.id)}`,
      new Date(ev.created_at).toISOString(),
    ].join(' · '),
  );

  if (alert.kind === 'recovered') {
    const text = `:white_check_mark: Run ${run.run_id} is healthy again (was ${run.previous_health}); heartbeats resumed at step ${show(run.step)}.`;
    return {
      text,
      blocks: [
        {
          type: 'section',
          text: md(
            `:white_check_mark: *Run \`${id}\` is healthy again*\nHeartbeats resumed at step ${show(run.step)} (was ${slackEscape(run.previous_health)}).`,
          ),
        },
        { type: 'context', elements: [context] },
      ],
    };
  }

  const unresponsive = alert.run.health === 'unresponsive';
  const headline = unresponsive ? 'is unresponsive' : 'heartbeat is stale';
  const detail = unresponsive
    ? `No valid heartbeat for ${secs(ctx.unresponsiveAfterMs)}; PagerDuty has been paged and termination is recommended.`
    : `No valid heartbeat for ${secs(ctx.staleAfterMs)}; it is escalated to PagerDuty as unresponsive after ${secs(ctx.unresponsiveAfterMs)} without one.`;
  const fields = [
    md(`*Status*\n${slackEscape(run.status)}`),
    md(`*Health*\n${slackEscape(run.health)}`),
    md(`*Step*\n${show(run.step)}`),
    md(`*Loss*\n${show(run.loss)}`),
    md(`*Samples/s*\n${show(run.samples_per_sec)}`),
  ];
  if (run.last_error) fields.push(md(`*Last error*\n${slackEscape(clip(run.last_error, 500))}`));
  return {
    text: `:warning: Run ${run.run_id} ${headline}: ${detail} (status ${run.status}, step ${show(run.step)})`,
    blocks: [
      { type: 'section', text: md(`:warning: *Run \`${id}\` ${headline}*\n${detail}`), fields },
      { type: 'context', elements: [context] },
    ],
  };
}
