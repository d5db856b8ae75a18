export * from './types';
export { createReactor, createReactorWith } from './reactor';
export {
  loadBackend,
  tryBackend,
  describeChoice,
  packageName,
  BACKEND_PREFERENCE,
  BACKEND_NAMES,
  BackendUnavailableError,
} from './loader';
export type { BackendAttempt, BackendStatus, LoadedBackend } from './loader';
export { errnoCode } from './errors';
