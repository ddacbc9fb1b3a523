// Builds the player into dist/: bundles the TypeScript entry points with esbuild, copies the static pages and the
// onnxruntime-web WASM files (served by us; never fetched from a CDN).   node build.mjs [--watch]
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "ort"), { recursive: true });

await build({
  entryPoints: {
    app: join(root, "src/main.ts"),
    bench: join(root, "src/bench.ts"),
    "bench-worker": join(root, "src/bench-worker.ts"),
    "flappy-worker": join(root, "src/flappy/worker.ts"),
    "breakout-worker": join(root, "src/breakout/worker.ts"),
  },
  bundle: true,
  format: "esm",
  target: "es2022",
  outdir: dist,
  sourcemap: true,
  minify: false,
  logLevel: "warning",
  // onnxruntime-web locates its WASM through env.wasm.wasmPaths (set in src/shell/ort.ts), not through the bundle
});

cpSync(join(root, "public"), dist, { recursive: true });
const ortDist = join(root, "node_modules/onnxruntime-web/dist");
const wasm = readdirSync(ortDist).filter((f) => /^ort-wasm-simd-threaded(\.jsep)?\.(wasm|mjs)$/.test(f));
for (const f of wasm) cpSync(join(ortDist, f), join(dist, "ort", f));
writeFileSync(join(dist, "build.json"), JSON.stringify({ built: new Date().toISOString(), ort_files: wasm }, null, 2));
console.log(`built ${dist} (onnxruntime-web files: ${wasm.join(", ")})`);
