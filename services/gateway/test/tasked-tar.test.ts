import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { paxRecord, tarStream, type TarEntry } from '../src/tasked/tar.js';

const scratch = mkdtempSync(join(tmpdir(), 'tasked-tar-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function archive(entries: TarEntry[]): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of tarStream(entries, 1_700_000_000)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("the tar export's archive", () => {
  it('is read back by tar: files, sizes not a multiple of the block, a path longer than ustar holds, content in several chunks', async () => {
    const long = `artifacts/${'deep/'.repeat(30)}report é.txt`;
    const bytes = await archive([
      { path: 'export.json', size: 10, content: [Buffer.from('{"a":'), Buffer.from('"b"}\n')] },
      { path: 'artifacts/empty.txt', size: 0, content: [] },
      { path: long, size: 600, content: [Buffer.alloc(600, 'x')] },
    ]);
    expect(bytes.length % 512).toBe(0);
    const file = join(scratch, 'a.tar.gz');
    writeFileSync(file, gzipSync(bytes));
    const out = join(scratch, 'out');
    execFileSync('mkdir', ['-p', out]);
    execFileSync('tar', ['-xzf', file, '-C', out]);
    expect(readFileSync(join(out, 'export.json'), 'utf8')).toBe('{"a":"b"}\n');
    expect(readFileSync(join(out, 'artifacts/empty.txt'), 'utf8')).toBe('');
    expect(readFileSync(join(out, long), 'utf8')).toBe('x'.repeat(600));
  });

  it('fails rather than write an entry whose content is not the size recorded', async () => {
    await expect(archive([{ path: 'a', size: 3, content: [Buffer.from('ab')] }])).rejects.toThrow('a is 2 bytes, not the 3 recorded for it');
    await expect(archive([{ path: 'a', size: 1, content: [Buffer.from('ab')] }])).rejects.toThrow('longer than the 1 bytes');
  });

  it('writes pax records whose length counts itself', () => {
    for (const value of ['a', 'x'.repeat(90), 'y'.repeat(995)]) {
      const record = paxRecord('path', value);
      expect(Number(record.split(' ')[0])).toBe(Buffer.byteLength(record));
    }
  });
});
