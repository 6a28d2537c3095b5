export * from './references.js';
export * from './cel.js';
