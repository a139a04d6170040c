{
  description = "provision: a reproducible sandbox for every git worktree";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = "provision";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # The tests start git repositories and a PostgreSQL server of their own.
          nativeCheckInputs = [ pkgs.git pkgs.postgresql_15 pkgs.sqlite ];
          meta.mainProgram = "provision";
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
            hyperfine
            postgresql_15
            sqlite
          ];
          RUST_BACKTRACE = "1";
        };
      });
    };
}
