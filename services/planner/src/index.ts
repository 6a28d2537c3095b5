export * from './planner.js';
export * from './settings.js';
