/**
 * A parser for the text/event-stream format (the WHATWG "server-sent events" rules), fed with
 * decoded text chunks as they arrive. The dashboard reads the stream with fetch() so that the
 * bearer token travels in a header (EventSource cannot set one, and a token in the URL ends up
 * in logs and history); this is the part of EventSource it then needs. Pure: no DOM, no I/O.
 */
export interface SseMessage {
  /** The `id:` of this event, or of the last event that had one (the resume point). */
  lastEventId: string;
  /** The `event:` name; `message` when the event had none. */
  event: string;
  data: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private pendingCr = false;
  /** The last `id:` seen: what a reconnect sends as Last-Event-ID. */
  lastEventId = '';
  /** The server's `retry:` in milliseconds, when it sent one. */
  retryMs: number | null = null;

  /** Parses a chunk; returns the events it completed, in order. */
  feed(chunk: string): SseMessage[] {
    let text = chunk;
    // A CR at the end of the previous chunk may be the first half of a CRLF.
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buffer.slice(start, i);
      if (c === '\r') {
        if (i + 1 === this.buffer.length) this.pendingCr = true;
        else if (this.buffer[i + 1] === '\n') i++;
      }
      start = i + 1;
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored, as the format says
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const had = this.data.length > 0;
    const msg = { lastEventId: this.lastEventId, event: this.event || 'message', data: this.data.join('\n') };
    this.data = [];
    this.event = '';
    return had ? msg : null;
  }
}
