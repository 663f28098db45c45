// `import 'procpool'` (and the map/starmap commands) never load bullmq or
// ioredis; each of them has one home in src/cluster. Needs no Redis.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const staticImport = /^(?:import|export)\s[^;]*?from\s+'([^']+)'/gm;

/** Every file reached from `entry` through static imports, with the packages it names. */
function graph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8');
    const specs = [...text.matchAll(staticImport)].filter((m) => !/^import\s+type\s/.test(m[0]) && !/^export\s+type\s/.test(m[0])).map((m) => m[1]!);
    seen.set(file, specs.filter((spec) => !spec.startsWith('.')));
    for (const spec of specs) if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
  };
  visit(entry);
  return seen;
}

describe('cluster isolation', () => {
  it.each(['dist/src/index.js', 'dist/src/cli/main.js'])('%s never loads bullmq or ioredis', (entry) => {
    const packages = [...graph(join(root, entry)).values()].flat();
    expect(packages).not.toContain('bullmq');
    expect(packages).not.toContain('ioredis');
  });

  it('bullmq lives in src/cluster/queue.ts only, ioredis in src/cluster/redis.ts only', () => {
    const files = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
    const importing = (name: string): string[] => files.filter((file) => new RegExp(`from '${name}'`).test(readFileSync(join(root, 'src', file), 'utf8')));
    expect(importing('bullmq')).toEqual(['cluster/queue.ts']);
    expect(importing('ioredis')).toEqual(['cluster/redis.ts']);
  });
});
