/** Building and reading tar streams in tests (tar-stream + zlib, no system tar). */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export type Files = ReadonlyMap<string, Buffer>;

/** A gzip-compressed tar of the files (directories are implied by the names). */
export const packTarGz = (files: Files): Readable => {
  const pack = tar.pack();
  for (const [name, data] of files) pack.entry({ name, mode: 0o644 }, data);
  pack.finalize();
  return pack.pipe(createGzip());
};

/** Regular files of a plain tar stream, by name (directories skipped). */
export const readTar = async (stream: Readable): Promise<Map<string, Buffer>> => {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  stream.on('error', (e) => extract.destroy(e));
  stream.pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.type === 'file') files.set(entry.header.name, Buffer.concat(chunks));
  }
  return files;
};

/** A small project: text, binary (every byte value), nested, spaces in names. */
export const sampleFiles = (): Map<string, Buffer> => new Map([
  ['a b.txt', Buffer.from('hello with spaces\n')],
  ['data.bin', Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)])],
  ['other.bin', randomBytes(1000)],
  ['sub/dir/deep.txt', Buffer.from('deep\n')],
  ['sub/skip.log', Buffer.from('log\n')],
]);

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
