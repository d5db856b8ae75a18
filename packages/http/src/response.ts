// One response: either complete in one call (send/json: head and body leave as one
// write) or streamed (writeHead, write until it returns false, go on in onDrain, end).
import { dateField } from './date';
import type { HttpRequest } from './request';
import { bodyless, statusLine } from './status';

/** Extra header fields of a response. Names and values must not contain CR or LF. */
export type ResponseHeaders = Readonly<Record<string, string | number>>;

/** What a response writes through: the connection, seen from one exchange. */
export interface ResponseSink {
  readonly closed: boolean;
  /** Queue bytes for the client; false once the connection's queue is over its high-water mark. */
  write(data: string | Uint8Array): boolean;
  /** The response is complete; `keepAlive` false closes the connection after it. */
  responseDone(keepAlive: boolean): void;
  /** The framing promise was broken (fewer bytes than Content-Length): close at once. */
  destroy(err: Error): void;
}

const enum Framing {
  None, // HEAD, 1xx, 204, 304: no body whatever the handler writes
  Length, // Content-Length given by the handler
  Chunked, // HTTP/1.1 without a length
  Close, // HTTP/1.0 without a length: the body ends when the connection does
}

const FIELD_TEXT = /[\r\n]/;
const LAST_CHUNK = '0\r\n\r\n';

export class HttpResponse {
  /** Keep the connection after this response; starts as the client asked. Set false
   *  before the head is written to close after it. */
  keepAlive: boolean;
  /** The connection's write queue emptied after write() returned false. */
  onDrain: (() => void) | undefined;
  /** The client went away before end(): stop producing. */
  onClose: (() => void) | undefined;
  private started = false;
  private ended = false;
  private framing = Framing.None;
  private remaining = 0;

  constructor(
    private readonly sink: ResponseSink,
    readonly request: HttpRequest,
  ) {
    this.keepAlive = request.keepAlive;
  }

  get headersSent(): boolean {
    return this.started;
  }
  get finished(): boolean {
    return this.ended;
  }
  /** The connection is gone: writes are dropped. */
  get closed(): boolean {
    return this.sink.closed;
  }

  /** A complete response in one write. `body` defaults to empty; the content type to
   *  plain UTF-8 text. HEAD gets the same head without the body. */
  send(status: number, body: string | Uint8Array = '', contentType = 'text/plain; charset=utf-8', headers?: ResponseHeaders): void {
    const noBody = bodyless(status);
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    let head = statusLine(status) + dateField();
    if (!noBody) {
      if (FIELD_TEXT.test(contentType)) throw new TypeError('Content-Type must not contain CR or LF');
      head += `Content-Type: ${contentType}\r\nContent-Length: ${length}\r\n`;
    }
    if (headers !== undefined) head += fields(headers).text;
    this.begin();
    head += this.connectionField();
    if (noBody || length === 0 || this.request.method === 'HEAD') this.sink.write(head);
    else if (typeof body === 'string') this.sink.write(head + body);
    else {
      // Strings leave as UTF-8 (what the connection does with them), heads included.
      const headBytes = Buffer.byteLength(head);
      const out = Buffer.allocUnsafe(headBytes + length);
      out.write(head, 0, 'utf8');
      out.set(body, headBytes);
      this.sink.write(out);
    }
    this.finish();
  }

  /** `send` of `JSON.stringify(value)` plus a newline, as application/json. */
  json(status: number, value: unknown, headers?: ResponseHeaders): void {
    this.send(status, `${JSON.stringify(value)}\n`, 'application/json', headers);
  }

  /** Start a streamed response. With a Content-Length field the body is exactly that
   *  long; without one it is chunked (HTTP/1.1) or ends with the connection (HTTP/1.0). */
  writeHead(status: number, headers: ResponseHeaders = {}): void {
    const f = fields(headers);
    let head = statusLine(status) + dateField() + f.text;
    this.begin();
    if (bodyless(status) || this.request.method === 'HEAD') this.framing = Framing.None;
    else if (f.contentLength !== undefined) {
      this.framing = Framing.Length;
      this.remaining = f.contentLength;
    } else if (this.request.version === '1.1') {
      this.framing = Framing.Chunked;
      head += 'Transfer-Encoding: chunked\r\n';
    } else {
      this.framing = Framing.Close;
      this.keepAlive = false;
    }
    this.sink.write(head + this.connectionField());
  }

  /** Write part of the body. Returns false when the client is not keeping up: stop
   *  until onDrain. After the client went away it drops the bytes and returns false. */
  write(chunk: string | Uint8Array): boolean {
    if (!this.started || this.ended) throw new Error(this.ended ? 'write after end' : 'write before writeHead');
    if (this.sink.closed) return false;
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    switch (this.framing) {
      case Framing.None:
        return true;
      case Framing.Length:
        if (length > this.remaining) throw new RangeError(`write of ${length} bytes exceeds the declared Content-Length (${this.remaining} left)`);
        this.remaining -= length;
        return length === 0 || this.sink.write(chunk);
      case Framing.Close:
        return length === 0 || this.sink.write(chunk);
      case Framing.Chunked: {
        if (length === 0) return true; // an empty chunk would end the body
        const size = `${length.toString(16)}\r\n`;
        if (typeof chunk === 'string') return this.sink.write(`${size}${chunk}\r\n`);
        const out = Buffer.allocUnsafe(size.length + length + 2);
        out.write(size, 0, 'latin1');
        out.set(chunk, size.length);
        out[out.length - 2] = 13;
        out[out.length - 1] = 10;
        return this.sink.write(out);
      }
    }
  }

  /** Finish the response (optionally writing a last chunk first). */
  end(chunk?: string | Uint8Array): void {
    if (!this.started) throw new Error('end before writeHead (use send for a complete response)');
    if (this.ended) return;
    if (chunk !== undefined) this.write(chunk);
    if (this.framing === Framing.Length && this.remaining > 0 && !this.sink.closed) {
      this.ended = true;
      this.sink.destroy(new Error(`response ended ${this.remaining} bytes short of its Content-Length`));
      return;
    }
    if (this.framing === Framing.Chunked && !this.sink.closed) this.sink.write(LAST_CHUNK);
    this.finish();
  }

  private begin(): void {
    if (this.started) throw new Error('response already started');
    this.started = true;
  }

  private finish(): void {
    this.ended = true;
    this.sink.responseDone(this.keepAlive);
  }

  private connectionField(): string {
    if (!this.keepAlive) return 'Connection: close\r\n\r\n';
    return this.request.version === '1.0' ? 'Connection: keep-alive\r\n\r\n' : '\r\n';
  }
}

/** Serialise extra header fields; refuses CR/LF (header injection) and notes Content-Length. */
function fields(headers: ResponseHeaders): { text: string; contentLength: number | undefined } {
  let text = '';
  let contentLength: number | undefined;
  for (const name in headers) {
    const value = String(headers[name]);
    if (FIELD_TEXT.test(name) || FIELD_TEXT.test(value)) throw new TypeError(`header ${JSON.stringify(name)} must not contain CR or LF`);
    if (name.toLowerCase() === 'content-length') {
      if (!/^\d+$/.test(value)) throw new TypeError(`invalid Content-Length ${JSON.stringify(value)}`);
      contentLength = Number(value);
    }
    text += `${name}: ${value}\r\n`;
  }
  return { text, contentLength };
}
