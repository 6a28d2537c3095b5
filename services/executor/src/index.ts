export * from './executor.js';
export { createSteps, StepError, LOCAL_HTTP_ALLOW, parseAllowSetting, InvalidAllowEntryError } from './steps/index.js';
