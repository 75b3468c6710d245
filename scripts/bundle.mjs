// Build step: bundle the compiled CLI (dist/src/cli/main.js) into dist/bin/,
// the `spread` command that package.json names and the tests run. One file
// loads in a fraction of the time of the ~100 modules it replaces (yaml alone
// is 72 CommonJS files); what only a run needs stays in chunks loaded when a
// run starts (bench/startup.ts measures it). ssh2 stays outside: it loads an
// optional native addon by a computed path, which a bundle cannot follow;
// so does ioredis, loaded only with -queue, whose optional parts load lazily.
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { pageScript } from '../dist/src/report/html/render.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bin');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { spread: join(root, 'dist/src/cli/main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['ssh2', 'ioredis'],
  chunkNames: 'chunks/[name]-[hash]',
  // yaml ships the same code as ES modules (its "browser" build): bundled from
  // those, calls into it are plain calls, not CommonJS-interop property getters.
  plugins: [{
    name: 'yaml-esm',
    setup(b) {
      b.onResolve({ filter: /^yaml$/ }, () => ({ path: join(root, 'node_modules/yaml/browser/index.js') }));
    },
  }],
  // The HTML report's page script, read from dist/src at build time (the bundle ships without it).
  define: { __SPREAD_REPORT_PAGE__: JSON.stringify(pageScript()) },
  // CommonJS dependencies call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __spreadRequire } from 'node:module'; const require = __spreadRequire(import.meta.url);" },
  logLevel: 'warning',
});
chmodSync(join(outdir, 'spread.js'), 0o755);
