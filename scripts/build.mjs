/**
 * The published build: each entry (library, command line, child) bundled by
 * esbuild into a few files, so that importing procpool loads one file
 * instead of its dependencies' module graphs, and installing it installs
 * nothing else. tsc writes the declarations beside them.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

const result = await build({
  absWorkingDir: root,
  entryPoints: { 'src/index': 'src/index.ts', 'src/cluster/index': 'src/cluster/index.ts', 'src/task': 'src/task.ts', 'src/cli/main': 'src/cli/main.ts', 'worker/entry': 'worker/entry.ts' },
  outdir: 'dist',
  // Shared code lands beside src/index.js, so its import.meta.url finds ../worker/entry.js from every chunk.
  chunkNames: 'src/chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // Optional peers are the user's own installs, found at run time.
  external: Object.keys(manifest.peerDependencies ?? {}),
  // Bundled CommonJS dependencies (the command line's) call require().
  banner: { js: "import { createRequire as __procpoolRequire } from 'node:module'; const require = __procpoolRequire(import.meta.url);" },
  // Not minified: it loads no faster, and a stack trace's source line must stay readable.
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
writeFileSync(join(dist, 'THIRD-PARTY-NOTICES.md'), notices(result.metafile));

/** The licenses of the packages whose code the bundles carry. */
function notices(metafile) {
  const packages = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input.slice(input.lastIndexOf('node_modules/')));
    if (match) packages.add(match[1]);
  }
  const sections = [...packages].sort().map((name) => {
    const dir = join(root, 'node_modules', name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = readdirSync(dir).find((entry) => /^licen[cs]e/i.test(entry));
    if (file === undefined) throw new Error(`${name} carries no license file: check its terms before bundling it`);
    return `## ${name} ${pkg.version} (${pkg.license})\n\n\`\`\`\n${readFileSync(join(dir, file), 'utf8').trim()}\n\`\`\`\n`;
  });
  return `# Third-party notices\n\nprocpool's bundled files carry code of these packages.\n\n${sections.join('\n')}`;
}
