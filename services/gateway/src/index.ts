export * from './app.js';
export * from './errors.js';
