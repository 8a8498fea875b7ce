// Bundles the browser code with esbuild: src/ -> static/build/ (not committed; `make`
// runs this after `npm ci`, and the Dockerfile does the same). One ES module per page.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: { chat: "src/chat/main.js", shared: "src/chat/shared.js" },
  outdir: "static/build",
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  loader: { ".woff2": "file", ".woff": "file", ".ttf": "file" },
  assetNames: "assets/[name]-[hash]",
  logLevel: "warning",
});
