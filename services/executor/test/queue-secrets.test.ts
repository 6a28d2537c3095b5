import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueuePolicyInput } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { loadSecrets, readQueueSecret } from '../src/run-time.js';

describe("queue secrets read on the executor's host (Tasked's queue secrets)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'queue-secrets-'));
  const file = join(dir, 'token');
  writeFileSync(file, '  from-file \n');

  it('read an environment variable of the executor', async () => {
    expect(await readQueueSecret('T', { env: 'TS_TEST_TOKEN' }, { TS_TEST_TOKEN: 'from-env' })).toBe('from-env');
  });

  it('read a regular file, trimmed', async () => {
    expect(await readQueueSecret('T', { file }, {})).toBe('from-file');
  });

  it('fail the task, naming the secret and where it was looked for, when the variable or file is missing', async () => {
    await expect(readQueueSecret('T', { env: 'TS_TEST_ABSENT' }, {})).rejects.toMatchObject({ detail: { code: 'SECRET_NOT_FOUND', retryable: false, message: expect.stringContaining('environment variable TS_TEST_ABSENT') } });
    await expect(readQueueSecret('T', { file: join(dir, 'absent') }, {})).rejects.toMatchObject({ detail: { code: 'SECRET_NOT_FOUND' } });
  });

  it('refuse symbolic links, directories and paths with ".."', async () => {
    const link = join(dir, 'link');
    symlinkSync(file, link);
    mkdirSync(join(dir, 'sub'));
    await expect(readQueueSecret('T', { file: link }, {})).rejects.toMatchObject({ detail: { code: 'SECRET_UNREADABLE', message: expect.stringContaining('symbolic link') } });
    await expect(readQueueSecret('T', { file: join(dir, 'sub') }, {})).rejects.toMatchObject({ detail: { code: 'SECRET_UNREADABLE', message: expect.stringContaining('not a regular file') } });
    await expect(readQueueSecret('T', { file: `${dir}/sub/../token` }, {})).rejects.toMatchObject({ detail: { code: 'SECRET_UNREADABLE', message: expect.stringContaining('"..') } });
  });

  it('are part of a queue policy in Tasked\'s spelling, and a wrong one is refused with the field named', () => {
    expect(QueuePolicyInput.parse({ secrets: { API_KEY: { env: 'API_KEY' }, DB: { file: '/run/secrets/db' } } }).secrets).toEqual({ API_KEY: { env: 'API_KEY' }, DB: { file: '/run/secrets/db' } });
    const refused = QueuePolicyInput.safeParse({ secrets: { DB: { file: 'relative' }, X: { vault: 'x' } } });
    expect(refused.success).toBe(false);
    expect(refused.error!.issues.map((i) => i.path.join('.'))).toEqual(['secrets.DB.file', 'secrets.X']);
  });
});

describe('the operator\'s webhook signing key', () => {
  it('is refused to every step, naming it, without reading it', async () => {
    let read = 0;
    const reader = async () => {
      read++;
      return 'whsec_c2VjcmV0';
    };
    await expect(loadSecrets(['webhooks'], reader)).rejects.toMatchObject({ detail: { code: 'SECRET_RESERVED', retryable: false, message: expect.stringContaining('secret "webhooks" signs every flow\'s completion webhooks') } });
    expect(read).toBe(0);
    await expect(loadSecrets(['deploy_token'], reader)).resolves.toEqual(new Map([['deploy_token', 'whsec_c2VjcmV0']]));
  });
});
