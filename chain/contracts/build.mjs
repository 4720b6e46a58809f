// Compiles src/*.sol with the pinned solc (package.json) and writes, for each deployable
// contract, out/<Name>.json = { "abi": [...], "bytecode": "0x…" }.
//
//   node build.mjs            rebuild out/
//   node build.mjs --check    compile and fail if out/ differs from the sources (CI, chain/tests/contracts.rs)
//   node build.mjs --out DIR  write the artifacts to DIR instead
//
// Output is deterministic: fixed settings, no metadata hash in the bytecode, sorted JSON keys.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");

/// The contracts that get deployed; the other sources are libraries, interfaces and bases.
const DEPLOYABLE = [
  "BondingManager",
  "Controller",
  "LivepeerToken",
  "Minter",
  "RoundsManager",
  "ServiceRegistry",
  "TicketBroker",
];

function parseArgs(argv) {
  const args = { check: false, out: join(here, "out") };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--check") args.check = true;
    else if (argv[i] === "--out") args.out = argv[++i];
    else throw new Error(`unknown argument ${argv[i]} (expected --check or --out DIR)`);
  }
  return args;
}

/// JSON with object keys sorted at every level, two-space indent, trailing newline.
function stableStringify(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]));
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2) + "\n";
}

function compile() {
  const sources = {};
  for (const file of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
    sources[`src/${file}`] = { content: readFileSync(join(srcDir, file), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      metadata: { bytecodeHash: "none", appendCBOR: false },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = output.errors ?? [];
  for (const p of problems) {
    process.stderr.write(p.formattedMessage ?? p.message);
  }
  if (problems.some((p) => p.severity === "error")) {
    throw new Error("compilation failed");
  }

  const artifacts = {};
  for (const name of DEPLOYABLE) {
    const contract = output.contracts[`src/${name}.sol`]?.[name];
    if (!contract) throw new Error(`no contract ${name} in src/${name}.sol`);
    artifacts[name] = stableStringify({ abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object });
  }
  return artifacts;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const artifacts = compile();
  if (args.check) {
    const stale = [];
    for (const [name, text] of Object.entries(artifacts)) {
      const path = join(args.out, `${name}.json`);
      if (!existsSync(path) || readFileSync(path, "utf8") !== text) stale.push(path);
    }
    if (stale.length > 0) {
      console.error(`stale artifacts (run \`npm run build --prefix chain/contracts\`):\n  ${stale.join("\n  ")}`);
      process.exit(1);
    }
    console.log(`artifacts up to date (solc ${solc.version()})`);
    return;
  }
  mkdirSync(args.out, { recursive: true });
  for (const [name, text] of Object.entries(artifacts)) {
    writeFileSync(join(args.out, `${name}.json`), text);
  }
  console.log(`wrote ${Object.keys(artifacts).length} artifacts to ${args.out} (solc ${solc.version()})`);
}

main();
