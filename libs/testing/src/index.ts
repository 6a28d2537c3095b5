export * from './nats-server.js';
export * from './wait.js';
