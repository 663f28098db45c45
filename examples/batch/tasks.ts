/** The batch example's task module: one export, one file per call. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

/** What one file came to. */
export interface FileDigest {
  file: string;
  bytes: number;
  gzipped: number;
  sha256: string;
}

/** Gzips a file at the highest level and hashes it with SHA-256: real CPU work, a few milliseconds per file. */
export function compressAndHash(file: string): FileDigest {
  const data = readFileSync(file);
  const gzipped = gzipSync(data, { level: 9 });
  return { file, bytes: data.length, gzipped: gzipped.length, sha256: createHash('sha256').update(data).digest('hex') };
}
