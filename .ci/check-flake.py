"""Parses flake.nix with tree-sitter's Nix grammar: Nix itself cannot fetch
nixpkgs here, so the flake is checked for syntax and for the outputs that
`nix develop` and `nix build` need."""
import sys

import tree_sitter_nix
from tree_sitter import Language, Parser

source = open(sys.argv[1] if len(sys.argv) > 1 else "flake.nix", "rb").read()
tree = Parser(Language(tree_sitter_nix.language())).parse(source)


def errors(node):
    if node.type == "ERROR" or node.is_missing:
        yield node
    for child in node.children:
        yield from errors(child)


bad = list(errors(tree.root_node))
for node in bad:
    line, col = node.start_point
    print(f"flake.nix:{line + 1}:{col + 1}: syntax error near {source[node.start_byte:node.end_byte][:40]!r}")
text = source.decode()
missing = [name for name in ("devShells", "packages", "inputs", "outputs") if name not in text]
for name in missing:
    print(f"flake.nix: no `{name}`")
sys.exit(1 if bad or missing else 0)
