export { createMcpServer, MAX_RESOURCE_EVENTS, type McpServerOptions, type TaskstreamMcp } from './server.js';
export { serveStdio } from './stdio.js';
export { eventsUri, FLOW_SCHEMA_URI, flowOfUri, flowUri } from './format.js';
