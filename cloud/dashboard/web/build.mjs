// Builds the dashboard into ../assets, which the Go package embeds:
//
//   app.<hash>.js    src/app.js bundled with uPlot (ES module, minified)
//   app.<hash>.css   src/style.css with uPlot's stylesheet
//   favicon.<hash>.png
//   index.html       the page, naming the hashed files
//   uplot-LICENSE.txt
//
// Run with `npm ci && npm run build` in this folder. Nothing here or in
// the output may load anything from another origin: the build fails if an
// output file holds an http:// or https:// address.
import { build } from "esbuild";
import { favicon } from "./favicon.mjs";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const out = join(here, "..", "assets");

const hash = (buf) => createHash("sha256").update(buf).digest("hex").slice(0, 12);

async function bundle(entry, loader) {
  const r = await build({
    entryPoints: [join(src, entry)],
    bundle: true,
    format: "esm",
    target: ["es2022"],
    minify: true,
    legalComments: "none", // uPlot's licence ships as uplot-LICENSE.txt
    banner: { [loader]: "/* Tributary dashboard. Includes uPlot (MIT License, see uplot-LICENSE.txt). */" },
    write: false,
    logLevel: "warning",
  });
  return Buffer.from(r.outputFiles[0].contents);
}

const files = {};
function emit(name, ext, buf) {
  const file = `${name}.${hash(buf)}.${ext}`;
  files[file] = buf;
  return file;
}

const js = emit("app", "js", await bundle("app.js", "js"));
const css = emit("app", "css", await bundle("style.css", "css"));
const icon = emit("favicon", "png", favicon());
files["index.html"] = Buffer.from(
  readFileSync(join(src, "index.html"), "utf8")
    .replaceAll("{{app.js}}", js)
    .replaceAll("{{app.css}}", css)
    .replaceAll("{{favicon.png}}", icon),
);
files["uplot-LICENSE.txt"] = readFileSync(join(here, "node_modules", "uplot", "LICENSE"));

for (const [name, buf] of Object.entries(files)) {
  const m = buf.toString("utf8").match(/https?:\/\/[^\s"'`)]*/);
  if (m) {
    console.error(`build: ${name} references ${m[0]}: the dashboard must not load anything from another origin`);
    process.exit(1);
  }
}

mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) rmSync(join(out, f));
for (const [name, buf] of Object.entries(files)) writeFileSync(join(out, name), buf);
console.log(`build: wrote ${Object.keys(files).sort().join(", ")} to ${out}`);
