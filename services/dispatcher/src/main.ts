import { runDispatcherService } from './settings.js';

await runDispatcherService();
