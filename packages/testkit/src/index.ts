// @logcaster/testkit: helpers every package's tests share (private, never published).
export * from './net';
export * from './examples';
export * from './fs';
export * from './http';
export * from './clients';
export * from './mocha';
export * from './process';
export * from './mountns';
export { describePrebuiltInstall, testPrebuiltInstall, type PrebuiltInstallResult } from './packaging';
export * from './netns';
export { TCP_CLIENT_SCRIPT } from './tcp-client';
export { TLS_CLIENT_SCRIPT } from './tls-client';
export * from './dgram';
export * from './rsyslog';
export * from './pki';
export * from './tls-peer';
export * from './openssl-client';
