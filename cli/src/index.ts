export { startStack, type Stack, type StackOptions } from './embedded.js';
export { GatewayClient } from './client.js';
export { RunRenderer, renderStatus } from './render.js';
export { UserError } from './user-error.js';
