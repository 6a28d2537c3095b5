export { findNatsServer } from '@taskstream/nats';
export * from './ports.js';
export * from './cluster.js';
export * from './wait.js';
export * from './processes.js';
export * from './configured.js';
export * from './loopback-only.js';
export * from './proxy.js';
