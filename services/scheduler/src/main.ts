import { runSchedulerService } from './settings.js';

await runSchedulerService();
