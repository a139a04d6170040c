{
  description = "provision: a reproducible sandbox for every git worktree";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # `nix build`: the binary, from Cargo.lock's exact crates.
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = "provision";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # The tests start git repositories, a PostgreSQL server and the
          # shells whose `provision env --shell` output they evaluate.
          nativeCheckInputs = with pkgs; [ git postgresql_15 sqlite zsh fish util-linux ];
          meta = {
            description = "A reproducible sandbox (links, env overrides, database, port) for every git worktree";
            license = with pkgs.lib.licenses; [ mit asl20 ];
            mainProgram = "provision";
          };
        };
      });

      # `nix run . -- new feature-x`
      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.default}/bin/provision";
        };
      });

      # `nix develop`: the toolchain, the tools the tests and benchmarks
      # drive, and nothing from the host.
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            cargo-nextest
            git
            just
            python3
            postgresql_15
            sqlite
            zsh
            fish
          ];
          RUST_BACKTRACE = "1";
        };
      });

      # `nix flake init -t /path/to/provision` (a clone): a project flake whose
      # `nix develop` loads the current worktree's sandbox overrides.
      templates.default = {
        path = ./nix/template;
        description = "A dev shell with provision that exports the current worktree's DB_NAME, PORT and other overrides";
      };
    };
}
