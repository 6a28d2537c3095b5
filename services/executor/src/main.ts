import { runExecutorService } from './settings.js';

await runExecutorService();
