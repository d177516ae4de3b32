// Bundles the dashboard (src/) with esbuild into one directory: index.html, app-<hash>.js,
// app-<hash>.css, and a .gz of each. dashboard/build.rs runs it and embeds the result; it fails when
// the gzipped total passes the budget.
//
//   node build.mjs --outdir DIR
import { readFile, writeFile, rm, mkdir, readdir, stat } from 'node:fs/promises'
import { gzipSync, constants } from 'node:zlib'
import path from 'node:path'
import * as esbuild from 'esbuild'

/** The gzipped size the whole dashboard must stay under. */
const BUDGET_BYTES = 200 * 1000

const args = process.argv.slice(2)
const outdir = path.resolve(args[args.indexOf('--outdir') + 1] ?? 'dist')
const here = path.dirname(new URL(import.meta.url).pathname)

await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })
const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.jsx' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome111', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning'
})
const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f))
const js = outputs.find((f) => f.endsWith('.js'))
const css = outputs.find((f) => f.endsWith('.css'))
if (!js || !css) throw new Error(`esbuild wrote ${outputs.join(', ')}: expected one .js and one .css`)

// Asset URLs are relative to /dashboard (or /{stage}/dashboard), so the page works behind any stage.
const html = (await readFile(path.join(here, 'src/index.html'), 'utf8')).replace('{{css}}', `dashboard/${css}`).replace('{{js}}', `dashboard/${js}`)
await writeFile(path.join(outdir, 'index.html'), html)

let total = 0
for (const f of await readdir(outdir)) {
  const body = await readFile(path.join(outdir, f))
  const gz = gzipSync(body, { level: constants.Z_BEST_COMPRESSION })
  await writeFile(path.join(outdir, `${f}.gz`), gz)
  total += gz.length
  console.log(`${f}: ${(await stat(path.join(outdir, f))).size} bytes, ${gz.length} gzipped`)
}
console.log(`dashboard: ${total} bytes gzipped in all (budget ${BUDGET_BYTES})`)
if (total > BUDGET_BYTES) throw new Error(`the dashboard is ${total} bytes gzipped, over its budget of ${BUDGET_BYTES}`)
