// Build step: bundle the compiled CLI (dist/src/cli/main.js) into one
// CommonJS file, dist/bin/spread-bundle.cjs, and its launcher into
// dist/bin/spread.cjs, the `spread` command package.json names and the tests
// run. The launcher (src/cli/launch.ts) loads the bundle through a V8 code
// cache: one file, compiled once per machine instead of once per run. What
// only a run needs (SSH, tar, the runner, the reporters) is in the bundle but
// not evaluated before a run starts: the dynamic imports become lazy module
// initialisers (test/cli/startup.test.ts, bench/startup.ts). ssh2 is bundled
// too; its optional native addons are loaded from the installed ssh2 and
// cpu-features packages, as ssh2 itself would. ioredis stays outside (loaded
// only with -queue).
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { pageScript } from '../dist/src/report/html/render.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bin');
rmSync(outdir, { recursive: true, force: true });

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // The ES modules' import.meta.url, as the bundle's own file (no banner: "use strict" must come first).
  define: { 'import.meta.url': '__spreadUrl' },
  inject: [join(root, 'scripts/import-meta-url.mjs')],
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [join(root, 'dist/src/cli/main.js')],
  outfile: join(outdir, 'spread-bundle.cjs'),
  external: ['ioredis', 'cpu-features'],
  define: { ...common.define, __SPREAD_REPORT_PAGE__: JSON.stringify(pageScript()) },
  plugins: [{
    name: 'spread',
    setup(b) {
      // yaml ships the same code as ES modules (its "browser" build): bundled from
      // those, calls into it are plain calls, not CommonJS-interop property getters.
      b.onResolve({ filter: /^yaml$/ }, () => ({ path: join(root, 'node_modules/yaml/browser/index.js') }));
      // ssh2's native crypto, from the ssh2 package installed beside the bundle.
      b.onResolve({ filter: /\/sshcrypto\.node$/ }, () => ({ path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node', external: true }));
    },
  }],
});
// The launcher wraps the bundle in a function: main.ts's #! line cannot stay in it. And all ASCII: V8
// then keeps it as a one-byte string, read in half the time (~3 ms). esbuild escapes strings, templates
// and names itself and leaves comments and regular expressions, where \uXXXX means the same character;
// each UTF-16 unit on its own (no u flag here), so a character outside the BMP becomes its surrogate pair.
const bundle = join(outdir, 'spread-bundle.cjs');
const escape = (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;
const text = readFileSync(bundle, 'utf8').replace(/^#!.*\n/, '').replace(/[^\x00-\x7f]/g, escape);
// esbuild turns every import() of a named module into a require(); one left (a computed name) would fail
// at run time under the launcher's vm.Script, which has no loader for it.
if (/\bimport\(/.test(text)) throw new Error(`${bundle}: a dynamic import() is left in the bundle; import modules by name`);
writeFileSync(bundle, text);

await build({ ...common, entryPoints: [join(root, 'dist/src/cli/bin.js')], outfile: join(outdir, 'spread.cjs') });
chmodSync(join(outdir, 'spread.cjs'), 0o755);
// The command's old name, for links made to it before (npx keeps them in its cache, scripts name it).
writeFileSync(join(outdir, 'spread.js'), "#!/usr/bin/env node\n// The command is dist/bin/spread.cjs; this name stays for links and scripts made before.\nimport { createRequire } from 'node:module';\n\ncreateRequire(import.meta.url)('./spread.cjs');\n");
chmodSync(join(outdir, 'spread.js'), 0o755);
