export * from './projector.js';
export * from './settings.js';
