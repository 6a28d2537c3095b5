import { EVENT_VERSION, type FlowEvent } from '@taskstream/domain';
import type { JsMsg } from '@taskstream/nats';
import { describe, expect, it } from 'vitest';
import { EventPlanner, type EventPlannerParts } from '../src/plan-event.js';

describe('an event the planner decides nothing on', () => {
  it("acknowledges a webhook's report without loading its finished flow", async () => {
    const touched: string[] = [];
    const refuse = (what: string) => () => {
      touched.push(what);
      throw new Error(`${what} was called`);
    };
    const parts = { cache: { load: refuse('cache.load'), forget: refuse('cache.forget') }, history: { fold: refuse('history.fold') }, appender: { append: refuse('append') }, timers: {}, log: {} } as unknown as EventPlannerParts;
    const event = {
      id: '01JAAAAAAAAAAAAAAAAAAAAAAB',
      type: 'flow.webhook_delivered',
      version: EVENT_VERSION,
      flow_id: '01JAAAAAAAAAAAAAAAAAAAAAAA',
      time: new Date(0).toISOString(),
      data: { webhook: 'on_complete', url: 'http://127.0.0.1:9/done', webhook_id: 'msg_01JAAAAAAAAAAAAAAAAAAAAAAA', attempts: 1, status: 200 },
    } as FlowEvent;
    await new EventPlanner(parts).handle(event, { seq: 9, info: { deliveryCount: 1 } } as unknown as JsMsg);
    expect(touched).toEqual([]);
  });
});
