import { runGatewayService } from './settings.js';

await runGatewayService();
