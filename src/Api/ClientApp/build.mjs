// Bundles the dashboard into ../wwwroot: app.js, app.css (ours + uPlot's) and index.html pointing at them by content
// hash, so a browser never mixes an old script with a new page. Run by `npm run build`, which MSBuild runs on build.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const out = new URL('../wwwroot/', import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: process.env.MINIFY !== "0",
  sourcemap: 'linked',
  target: 'es2022',
  format: 'esm',
  outfile: new URL('app.js', out).pathname,
  metafile: true,
  logLevel: 'warning',
});

const css = readFileSync('node_modules/uplot/dist/uPlot.min.css', 'utf8') + '\n' + readFileSync('src/styles.css', 'utf8');
writeFileSync(new URL('app.css', out), css);

const hash = (file) => createHash('sha256').update(readFileSync(new URL(file, out))).digest('hex').slice(0, 12);
const html = readFileSync('src/index.html', 'utf8')
  .replace('app.js', `app.js?v=${hash('app.js')}`)
  .replace('app.css', `app.css?v=${hash('app.css')}`);
writeFileSync(new URL('index.html', out), html);

const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`dashboard built: ${(bytes / 1024).toFixed(0)} KiB of script`);
