# `nix-instantiate --eval --strict -A ok nix/check.nix` (in `.ci/run` and
# `just lint`): nixpkgs cannot be fetched there, so the flakes are evaluated
# against stand-ins, as far as that goes without building anything: the
# outputs `nix build`, `nix run`, `nix develop` and `nix flake init -t`
# need, and the template shell's hook loading the worktree's overrides.
let
  system = "x86_64-linux";
  # Just enough of nixpkgs for the template's dev shell to evaluate.
  nixpkgs = {
    lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    legacyPackages.${system} = { mkShell = attrs: attrs; git = "git"; };
  };
  provision = { packages.${system}.default = "provision"; };

  outputs = (import ../flake.nix).outputs { self = { }; nixpkgs = { }; };
  template = import (outputs.templates.default.path + "/flake.nix");
  shell = (template.outputs { self = { }; inherit nixpkgs provision; }).devShells.${system}.default;

  expect = what: wanted: got:
    if got == wanted then true
    else throw "${what}: expected ${builtins.toJSON wanted}, found ${builtins.toJSON got}";
in
{
  ok = expect "flake.nix outputs" [ "apps" "devShells" "packages" "templates" ] (builtins.attrNames outputs)
    && expect "template inputs" [ "nixpkgs" "provision" ] (builtins.attrNames template.inputs)
    && expect "template shell packages" [ "provision" "git" ] shell.packages
    && expect "template shellHook loads the overrides" true
      (builtins.match ".*provision env --shell bash.*" shell.shellHook != null);
  # The tests run it in bash, in worktrees with and without a sandbox.
  inherit (shell) shellHook;
}
