// Build the page into web/dist (firebase.json's hosting.public): one minified ES module with
// the Firebase SDK bundled from npm, the HTML and the stylesheet. Nothing loads from a CDN.
import { build } from "esbuild";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = dirname(fileURLToPath(import.meta.url));
const out = join(web, "dist");
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [join(web, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  // the chart library is loaded only when a chart is drawn (a chunk of its own)
  splitting: true,
  outdir: out,
  entryNames: "app",
  chunkNames: "chunk-[hash]",
  metafile: true,
  logLevel: "warning",
});
await copyFile(join(web, "index.html"), join(out, "index.html"));
await copyFile(join(web, "app.css"), join(out, "app.css"));
await copyFile(join(web, "favicon.svg"), join(out, "favicon.svg"));
// App Check's public settings: none here; `make deploy` writes the APP_CHECK_SITE_KEY param in
await writeFile(join(out, "app-check.json"), `${JSON.stringify({ siteKey: "" })}\n`);
const sizes = Object.entries(result.metafile.outputs).map(
  ([file, o]) => `${file.split("/").pop()} ${(o.bytes / 1024).toFixed(0)} kB`,
);
console.log(`web: built web/dist (${sizes.join(", ")})`);
