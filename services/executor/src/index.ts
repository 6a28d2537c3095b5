export { startExecutor } from './executor.js';
export { executorConsumerName, type ExecutorOptions } from './config.js';
export { createSteps, StepError, LOCAL_HTTP_ALLOW, parseAllowSetting, InvalidAllowEntryError } from './steps/index.js';
export { EXECUTOR_SETTINGS, runExecutorService } from './settings.js';
