export * from './dispatcher.js';
export * from './settings.js';
