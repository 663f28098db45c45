/**
 * The batch example: generates a few thousand text files, then gzips and
 * hashes every one of them twice — serially in this process, and with the
 * `procpool` command on every core — and prints both times.
 *
 *   npm run example:batch                 # 3,000 files of 32 KiB
 *   tsx examples/batch/run.ts 1000 128    # 1,000 files of 128 KiB
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { compressAndHash, type FileDigest } from './tasks.ts';

const files = Number(process.argv[2] ?? 3000);
const kib = Number(process.argv[3] ?? 32);
const dir = join(tmpdir(), 'procpool-batch-example');
const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const taskModule = fileURLToPath(new URL('./tasks.ts', import.meta.url));

/** Text that gzip has to work at: words drawn by a seeded generator (the same files every run). */
function generate(): string[] {
  const words = 'pool process child chunk item result error ready close join terminate queue worker signal stream'.split(' ');
  let seed = 0x9e3779b9;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < files; i++) {
    const parts: string[] = [];
    for (let size = 0; size < kib * 1024; ) {
      const word = `${words[next() % words.length]!}${next() % 1000}`;
      parts.push(word);
      size += word.length + 1;
    }
    const path = join(dir, 'data', `file-${String(i).padStart(5, '0')}.txt`);
    writeFileSync(path, parts.join(' ').slice(0, kib * 1024));
    paths.push(path);
  }
  writeFileSync(join(dir, 'files.jsonl'), paths.map((path) => JSON.stringify(path)).join('\n') + '\n');
  return paths;
}

let started = performance.now();
const paths = generate();
console.log(`generated ${files} files of ${kib} KiB in ${dir} (${((performance.now() - started) / 1000).toFixed(1)} s)`);

started = performance.now();
const serial = paths.map(compressAndHash);
const serialMs = performance.now() - started;
console.log(`serial, in this process:  ${(serialMs / 1000).toFixed(2)} s`);

const input = join(dir, 'files.jsonl');
const output = join(dir, 'digests.jsonl');
const command = ['map', taskModule, 'compressAndHash', '--input', input, '--output', output];
const shown = (arg: string): string => (arg.startsWith('/') && !relative(process.cwd(), arg).startsWith('..') ? relative(process.cwd(), arg) : arg);
console.log(`$ procpool ${command.map(shown).join(' ')}`);
started = performance.now();
// stderr inherited: on a terminal the progress bar shows, then the summary line.
const { status } = spawnSync(process.execPath, [cli, ...command], { stdio: ['ignore', 'inherit', 'inherit'] });
const poolMs = performance.now() - started;
if (status !== 0) throw new Error(`procpool exited with ${String(status)}`);
console.log(`procpool, ${availableParallelism()} processes: ${(poolMs / 1000).toFixed(2)} s (start-up included)`);

const pooled = readFileSync(output, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as FileDigest);
const same = pooled.length === serial.length && pooled.every((digest, i) => digest.sha256 === serial[i]!.sha256 && digest.gzipped === serial[i]!.gzipped);
console.log(`speedup: ${(serialMs / poolMs).toFixed(2)}x; results ${same ? 'identical to the serial run' : 'DIFFER from the serial run'}`);
if (!same) process.exitCode = 1;
