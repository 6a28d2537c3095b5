export * from './limits.js';
export * from './record.js';
export * from './params.js';
export * from './validate.js';
export * from './instantiate.js';
