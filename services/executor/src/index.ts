export * from './executor.js';
export { createSteps, StepError } from './steps/index.js';
