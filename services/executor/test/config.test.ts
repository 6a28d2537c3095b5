import { describe, expect, it } from 'vitest';
import { executorConfig, executorConsumerName } from '../src/config.js';

describe('the executor config', () => {
  it('names the consumer and dead-letter source after the queue, "all" for every queue', () => {
    expect(executorConsumerName('gpu')).toBe('exec-gpu');
    expect(executorConfig({ queue: 'gpu' })).toMatchObject({ consumer: 'exec-gpu', source: 'executor-gpu' });
    expect(executorConfig({ queue: '*' })).toMatchObject({ consumer: 'exec-all', source: 'executor-all' });
  });

  it('fills in the defaults', () => {
    expect(executorConfig({ queue: 'default', env: {} })).toEqual({
      queue: 'default',
      consumer: 'exec-default',
      source: 'executor-default',
      concurrency: 8,
      shellEnabled: false,
      executorId: expect.stringMatching(/:default$/),
      crashLimit: 4,
      maxDeliver: 250,
      durableRetryAfterMs: 5_000,
      shutdownGraceMs: 10_000,
      ackWaitMs: 30_000,
      keepAliveMs: 10_000,
      env: {},
    });
  });

  it('reports a held item in progress three times per ack wait, at most once a second', () => {
    expect(executorConfig({ queue: 'q', ackWaitMs: 90_000 }).keepAliveMs).toBe(30_000);
    expect(executorConfig({ queue: 'q', ackWaitMs: 1_500 }).keepAliveMs).toBe(1_000);
  });
});
