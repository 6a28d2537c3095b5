export * from './scheduler.js';
export * from './settings.js';
