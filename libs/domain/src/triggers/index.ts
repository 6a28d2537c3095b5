export * from './record.js';
export * from './mapping.js';
