// What a request handler receives.
import type { Connection } from '@logcaster/core';

import type { HeaderFields, RequestHead } from './request-head';

export class HttpRequest {
  readonly method: string;
  /** The request target as sent, e.g. "/api/query?q=keyword%3Dx". */
  readonly target: string;
  readonly version: '1.0' | '1.1';
  /** Lower-case names; repeated fields joined with ", ". */
  readonly headers: HeaderFields;
  /** The client asked to keep the connection open after this exchange. */
  readonly keepAlive: boolean;
  private queryParams: URLSearchParams | undefined;

  constructor(
    head: RequestHead,
    /** The whole request body (empty without one), already limited by maxBodyBytes. */
    readonly body: Buffer,
    private readonly conn: Connection,
  ) {
    this.method = head.method;
    this.target = head.target;
    this.version = head.version;
    this.headers = head.headers;
    this.keepAlive = head.keepAlive;
  }

  /** The target up to "?", still percent-encoded. */
  get path(): string {
    const q = this.target.indexOf('?');
    return q < 0 ? this.target : this.target.slice(0, q);
  }

  /** The query string, parsed on first use. */
  get query(): URLSearchParams {
    if (this.queryParams === undefined) {
      const q = this.target.indexOf('?');
      this.queryParams = new URLSearchParams(q < 0 ? '' : this.target.slice(q + 1));
    }
    return this.queryParams;
  }

  get remoteAddress(): string | undefined {
    return this.conn.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.conn.remotePort;
  }
}
