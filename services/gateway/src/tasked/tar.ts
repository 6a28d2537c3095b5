/**
 * A tar archive (POSIX ustar, with a pax header for a path longer than ustar holds), written as a
 * stream of chunks: Tasked's `format=tar` export is a gzipped tar of `export.json` and the flow's
 * artifacts, and artifacts are streamed from the store into it, never held whole.
 */

const BLOCK = 512;

/** An entry: its path in the archive, its size, and its content as chunks that add up to `size`. */
export interface TarEntry {
  path: string;
  size: number;
  content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(path: string, size: number, type: '0' | 'x', mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(path, 0, 100, 'utf8');
  block.write(octal(0o644, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(mtime, 12), 136, 'ascii');
  block.write(' '.repeat(8), 148, 'ascii');
  block.write(type, 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + ' ', 148, 'ascii');
  return block;
}

/** A pax record `"<length> <key>=<value>\n"`, its length counting itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body);
  while (Buffer.byteLength(String(length)) + Buffer.byteLength(body) !== length) length = Buffer.byteLength(String(length)) + Buffer.byteLength(body);
  return `${length}${body}`;
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** The archive's bytes, entry by entry; a content that is not `size` bytes fails the stream rather than write a corrupt archive. */
export async function* tarStream(entries: AsyncIterable<TarEntry> | Iterable<TarEntry>, mtime = Math.floor(Date.now() / 1000)): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    if (Buffer.byteLength(entry.path) > 100) {
      const pax = Buffer.from(paxRecord('path', entry.path));
      yield header('PaxHeader', pax.length, 'x', mtime);
      yield pax;
      yield padding(pax.length);
    }
    yield header(entry.path, entry.size, '0', mtime);
    let written = 0;
    for await (const chunk of entry.content) {
      written += chunk.length;
      if (written > entry.size) throw new Error(`${entry.path} is longer than the ${entry.size} bytes recorded for it`);
      yield chunk;
    }
    if (written !== entry.size) throw new Error(`${entry.path} is ${written} bytes, not the ${entry.size} recorded for it`);
    yield padding(entry.size);
  }
  yield Buffer.alloc(BLOCK * 2);
}
