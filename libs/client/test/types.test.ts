import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type * as Gateway from '../../../services/gateway/src/openapi/schemas.js';
import type { ScheduleViewSchema } from '../../../services/gateway/src/routes/schedules.js';
import type * as Client from '../src/index.js';

/**
 * The client's answer types against the gateway's zod schemas of the same answers: each pair must
 * accept each other, so neither changes without the other (the check is the compiler's).
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function same<Check extends true>(): Check | void {}

same<Same<Client.Submitted, z.output<typeof Gateway.Submitted>>>();
same<Same<Client.Cancelling, z.output<typeof Gateway.Cancelling>>>();
same<Same<Client.Rerun, z.output<typeof Gateway.Rerun>>>();
same<Same<Client.Fork, z.output<typeof Gateway.Fork>>>();
same<Same<Client.FlowPage, z.output<typeof Gateway.FlowPage>>>();
same<Same<Client.FlowEvents, z.output<typeof Gateway.FlowEvents>>>();
same<Same<Client.FlowStateAt, z.output<typeof Gateway.FlowStateAt>>>();
same<Same<Client.QueueStats, z.output<typeof Gateway.QueueStats>>>();
same<Same<Client.DeadLetter, z.output<typeof Gateway.DeadLetterSchema>>>();
same<Same<Client.SecretInfo, z.output<typeof Gateway.SecretInfoSchema>>>();
same<Same<Client.CreatedKey, z.output<typeof Gateway.CreatedKey>>>();
same<Same<Client.ScheduleView, z.output<typeof ScheduleViewSchema>>>();

describe('the client types', () => {
  it('hold to the gateway\'s schemas (checked when the tests compile)', () => {
    expect(same()).toBeUndefined();
  });
});
