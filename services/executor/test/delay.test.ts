import { DelayConfig } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { createSteps } from '../src/steps/index.js';
import { stepContext } from './processes.js';

const steps = createSteps({ shellEnabled: false });
const delay = (config: Record<string, unknown>, signal?: AbortSignal) => steps.delay!(stepContext('delay', DelayConfig.parse(config) as Record<string, unknown>, signal));

describe('delay steps', () => {
  it("output Tasked's {delayed_seconds} for seconds, fractions included, and for ms", async () => {
    expect(await delay({ seconds: 0.05 })).toEqual({ delayed_seconds: 0.05 });
    expect(await delay({ seconds: 0 })).toEqual({ delayed_seconds: 0 });
    expect(await delay({ ms: 20 })).toEqual({ delayed_seconds: 0.02 });
  });

  it('wait at least the time asked', async () => {
    const started = performance.now();
    await delay({ seconds: 0.1 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  it("output the config's output instead when it has one, null included", async () => {
    expect(await delay({ ms: 1, output: { ready: true } })).toEqual({ ready: true });
    expect(await delay({ ms: 1, output: null })).toBeNull();
  });

  it("fail at once, not retryable, when the wait is longer than the task's timeout (Tasked's rule)", async () => {
    const ctx = stepContext('delay', DelayConfig.parse({ seconds: 10 }) as Record<string, unknown>);
    // Were it to wait, the test's own 5 s limit would end it first.
    await expect(steps.delay!({ ...ctx, spec: { ...ctx.spec, timeout_secs: 2 } })).rejects.toMatchObject({
      detail: { code: 'DELAY_EXCEEDS_TIMEOUT', retryable: false, message: 'delay 10s exceeds task timeout 2s; shorten the delay or raise timeout_secs' },
    });
  });

  it('end at once on a cancel', async () => {
    const controller = new AbortController();
    const step = delay({ seconds: 60 }, controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(step).rejects.toThrow('cancelled');
  });
});
