export { findNatsServer, freePort, NatsServer } from '@taskstream/nats';
export * from './cluster.js';
export * from './wait.js';
export * from './processes.js';
