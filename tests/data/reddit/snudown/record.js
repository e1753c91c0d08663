// Render Markdown with snudown-js (Reddit's renderer, snudown, compiled to JavaScript).
// stdin: a JSON array of Markdown strings; stdout: {"version": ..., "html": [...]}.
// SNUDOWN_JS names the installed package folder (node_modules/snudown-js).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.SNUDOWN_JS;
if (!dir) {
  console.error("SNUDOWN_JS must name the snudown-js package folder (npm install snudown-js)");
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
const { markdown } = await import(pathToFileURL(join(dir, pkg.module || pkg.main)).href);
const inputs = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({ version: pkg.version, html: inputs.map((md) => markdown(md)) }));
