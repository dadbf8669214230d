// Bundles the extension with esbuild (out/extension.js, `vscode` left external)
// and, with --tests, compiles test/*.ts one-to-one into out-test/ for node:test.
import * as esbuild from "esbuild";
import { readdirSync, rmSync } from "node:fs";

const args = new Set(process.argv.slice(2));
const production = args.has("--production");

if (args.has("--tests")) {
  rmSync("out-test", { recursive: true, force: true }); // no stale compiled tests
  const entryPoints = [
    ...readdirSync("test").filter((f) => f.endsWith(".ts")).map((f) => `test/${f}`),
    ...readdirSync("src").filter((f) => f.endsWith(".ts")).map((f) => `src/${f}`),
  ];
  await esbuild.build({
    entryPoints,
    outdir: "out-test",
    outbase: ".",
    platform: "node",
    format: "cjs",
    target: "node20",
    sourcemap: "inline",
    logLevel: "warning",
  });
} else {
  const options = {
    entryPoints: ["src/extension.ts"],
    bundle: true,
    outfile: "out/extension.js",
    external: ["vscode"],
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: production,
    sourcemap: !production,
    logLevel: "info",
  };
  if (args.has("--watch")) {
    const context = await esbuild.context(options);
    await context.watch();
  } else {
    await esbuild.build(options);
  }
}
