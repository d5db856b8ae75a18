// @logcaster/server: the LogCaster log collection server, embeddable.
export { createLogCaster, LogCaster, LogLine } from './server';
export type { LogCasterOptions, LogCasterStats, PersistenceEvent, StartInfo } from './server';
export type { SyslogHeader } from './query/syslog';
export { parseSyslog } from './query/syslog';
export { LineFramer } from './ingest/framing';
export { LogStore } from './store/log-store';
export type { FsyncPolicy } from './journal';
export { HELP_TEXT } from './query/query-port';
export { AccessConfigError } from './access/config';
export type { AccessEvent } from './access/config';
export { TlsConfigError } from './access/tls-config';
