// Loaded into each service by the bench only (`node --expose-gc --import`), so the bench can read a
// service's live heap over the IPC channel it starts the service with, and the services need no hook.
import { answerHeapRequests } from './memory.js';

answerHeapRequests(process, () => globalThis.gc!(), () => process.memoryUsage().heapUsed);
// The channel must not keep a service alive that would otherwise exit.
process.channel?.unref();
