// `import 'procpool'` (and the map/starmap commands) never load bullmq or
// ioredis; each of them has one home in src/cluster. Needs no Redis.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { outsideTemp } from '../fixtures/package/packed.js';

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

  it('without bullmq and ioredis installed, importing procpool/cluster (ESM or CommonJS) and `procpool worker` give the install line', () => {
    // The built package alone, in a project outside the repository: nothing resolves bullmq or ioredis there.
    const temp = outsideTemp();
    try {
      const installed = join(temp, 'node_modules', 'procpool');
      mkdirSync(installed, { recursive: true });
      cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true });
      cpSync(join(root, 'package.json'), join(installed, 'package.json'));
      writeFileSync(join(temp, 'tasks.mjs'), 'export const one = () => 1;\n');
      const env = { ...process.env, NODE_OPTIONS: '' };
      const runs = [
        ['--input-type=module', '-e', "await import('procpool/cluster')"],
        ['-e', "require('procpool/cluster')"],
        [join(installed, 'dist/src/cli/main.js'), 'worker', 'tasks.mjs', '--redis', 'redis://127.0.0.1:1'],
      ];
      for (const args of runs) {
        const ran = spawnSync(process.execPath, args, { cwd: temp, env, encoding: 'utf8', timeout: 60_000 });
        expect(ran.status, ran.stderr).not.toBe(0);
        // The error's own line is the install line (a stack may follow; Node prints it for an uncaught error).
        expect(ran.stderr).toMatch(/^(Error: |procpool: )?procpool\/cluster needs its optional peer dependencies bullmq and ioredis \(bullmq is not installed\): npm install bullmq@6 ioredis@5$/m);
        expect(ran.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
      }
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  });
});
