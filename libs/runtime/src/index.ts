export * from './logger.js';
export * from './context.js';
export * from './service.js';
export * from './env.js';
export * from './partitions.js';
export * from './metrics.js';
export * from './settings.js';
export * from './tracing.js';
