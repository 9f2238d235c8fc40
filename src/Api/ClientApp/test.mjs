// Unit tests of the dashboard's pure modules (series, jobdata): each src/**/*.test.ts is bundled by esbuild and run by
// Node's own test runner (node:test, node:assert), so testing adds no package. `npm test`; tests/Dashboard.Tests runs it.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const out = 'node_modules/.cache/dashboard-tests';
const tests = readdirSync('src', { recursive: true }).filter((f) => f.endsWith('.test.ts')).map((f) => join('src', f));
await build({ entryPoints: tests, bundle: true, platform: 'node', format: 'esm', outdir: out, outExtension: { '.js': '.mjs' }, logLevel: 'warning' });
const run = spawnSync(process.execPath, ['--test', ...tests.map((t) => join(out, t.slice(4).replace(/\.ts$/, '.mjs')))], { stdio: 'inherit' });
process.exit(run.status ?? 1);
