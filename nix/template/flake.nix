{
  description = "A project whose dev shell carries the current git worktree's sandbox";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    # Your clone of provision (`path:/home/you/src/provision`) or its git
    # URL (`git+https://…`): provision has no published flake address.
    provision.url = "path:/path/to/provision";
    provision.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, provision }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          packages = [
            provision.packages.${system}.default
            pkgs.git
            # The tools of your project, e.g. pkgs.nodejs_22 pkgs.sqlite
          ];
          # `nix develop` runs this in the worktree it is started in, so each
          # worktree's shell gets that worktree's DB_NAME, PORT, … (the values
          # its env file holds). A worktree without a sandbox yet says so
          # and the shell starts without them: run `provision apply` there.
          shellHook = ''
            if overrides="$(provision env --shell bash)"; then
              eval "$overrides"
            fi
          '';
        };
      });
    };
}
