import { runProjectorService } from './settings.js';

await runProjectorService();
