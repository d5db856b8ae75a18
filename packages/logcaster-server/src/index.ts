// @logcaster/server: the LogCaster log collection server, embeddable.
export { createLogCaster, LogCaster, LogLine } from './server';
export type { LogCasterOptions, LogCasterStats, StartInfo } from './server';
export type { SyslogHeader } from './syslog';
export { parseSyslog } from './syslog';
export { LineFramer } from './framing';
export { LogStore } from './store';
export type { FsyncPolicy } from './journal-api';
export { HELP_TEXT } from './query';
