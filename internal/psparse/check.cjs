// Reads {"name": "PowerShell source", ...} on stdin and writes, for each
// name, the ERROR and MISSING nodes tree-sitter-powershell finds in it:
// {"name": [{"kind", "line", "column", "text"}], ...}. Run by package
// psparse with NODE_PATH set to the node_modules holding web-tree-sitter
// and tree-sitter-powershell.
'use strict';
const { Parser, Language } = require('web-tree-sitter');

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const sources = JSON.parse(input);
  await Parser.init();
  const language = await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'));
  const parser = new Parser();
  parser.setLanguage(language);
  const out = {};
  for (const [name, source] of Object.entries(sources)) {
    const tree = parser.parse(source);
    const problems = [];
    const walk = (node) => {
      if (node.type === 'ERROR' || node.isMissing) {
        problems.push({
          kind: node.isMissing ? 'MISSING' : 'ERROR',
          line: node.startPosition.row + 1,
          column: node.startPosition.column + 1,
          text: node.isMissing ? node.type : node.text.slice(0, 80),
        });
      }
      if (node.hasError) {
        for (const child of node.children) walk(child);
      }
    };
    walk(tree.rootNode);
    out[name] = problems;
    tree.delete();
  }
  process.stdout.write(JSON.stringify(out), () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
