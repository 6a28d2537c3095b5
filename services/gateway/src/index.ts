export * from './app.js';
export * from './errors.js';
export * from './auth.js';
export * from './settings.js';
export * from './serve.js';
export * from './ui.js';
