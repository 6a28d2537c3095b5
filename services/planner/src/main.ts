import { runPlannerService } from './settings.js';

await runPlannerService();
