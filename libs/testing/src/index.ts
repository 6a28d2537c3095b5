export { findNatsServer, freePort, NatsServer, removeDir } from '@taskstream/nats';
export * from './cluster.js';
export * from './wait.js';
