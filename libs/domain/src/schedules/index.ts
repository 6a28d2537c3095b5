export * from './cron.js';
export * from './schedule.js';
export * from './ticks.js';
