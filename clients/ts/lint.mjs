// Lints an OpenAPI document with Redocly's linter (@redocly/openapi-core, the engine of
// `redocly lint`): the rules of redocly.yaml, the exceptions of .redocly.lint-ignore.yaml.
// Prints the problems and exits 1 on any error or warning. Run by clients/clients_test.go:
//
//   node lint.mjs ../../httpapi/openapi.yaml
import { fileURLToPath } from "node:url";
import { formatProblems, getTotals, lint, loadConfig } from "@redocly/openapi-core";

const file = process.argv[2];
if (!file) {
  console.error("usage: node lint.mjs <openapi document>");
  process.exit(2);
}
const config = await loadConfig({ configPath: fileURLToPath(new URL("redocly.yaml", import.meta.url)) });
const problems = await lint({ ref: file, config });
const totals = getTotals(problems);
formatProblems(problems, { format: "stylish", totals, version: "openapi-core", maxProblems: 100 });
console.log(`${file}: ${totals.errors} errors, ${totals.warnings} warnings, ${totals.ignored} ignored`);
process.exit(totals.errors + totals.warnings > 0 ? 1 : 0);
