// @logcaster/http: HTTP/1.1 on the LogCaster reactor.
export { createHttpHandler, HttpHandler } from './handler';
export type { HttpCounters, HttpOptions, RequestHandler } from './handler';
export { HttpRequest } from './request';
export { HttpResponse } from './response';
export type { ResponseHeaders } from './response';
export type { HeaderFields } from './request-head';
export { hasToken } from './request-head';
export { REASONS } from './status';
