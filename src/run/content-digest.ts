/**
 * A digest of the packed project that two checkouts of the same commit
 * agree on: each tar entry's name, type, mode, link target and contents, in
 * order, but not its times or owner (a CI checkout stamps files with the
 * time of the checkout). Runners of one shared run must send the same
 * project to their machines; this is how they check.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';

export async function contentDigest(gzipped: Readable): Promise<string> {
  const hash = createHash('sha256');
  const tar = extract();
  tar.on('entry', (header, stream, next) => {
    hash.update(`${header.type}\0${header.name}\0${(header.mode ?? 0) & 0o7777}\0${header.linkname ?? ''}\0${header.size ?? 0}\0`);
    stream.on('data', (chunk: unknown) => void hash.update(chunk as Buffer));
    stream.on('end', next);
    stream.on('error', next);
  });
  await pipeline(gzipped, createGunzip(), tar);
  return hash.digest('hex').slice(0, 16);
}
