#!/usr/bin/env python3
"""provision's benchmarks, side by side with git's own commands in one run.

    cargo build --release && python3 bench/bench.py [--runs N] [--out FILE] [--peers]

Generates a repository of about 3,000 tracked files, 20 migrations and four
untracked include entries, then times each group of commands round by round,
rotating their order every round so that machine drift falls on all of them
alike. Prints medians, min/max and ratios, each with its target and verdict,
and writes the same as Markdown to --out (and JSON beside it). Needs only
python3, git and sqlite3; every timing is a whole process, spawned here and
reaped with wait4 (which also gives peak resident memory).

With --peers it also times worktrunk (`wt`, installed into target/peers by
`cargo install` when missing): `wt switch --create` beside `provision new`,
and `wt list` beside `provision status`.
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

INCLUDES = [".env", ".dev.vars", ".npmrc", "node_modules"]
SETTLE = float(os.environ.get("BENCH_SETTLE", "0.3"))
# After a group's worktrees are deleted, before the next group starts.
TEARDOWN_SETTLE = float(os.environ.get("BENCH_TEARDOWN_SETTLE", "5"))
WORKTRUNK = "0.67.0"
# `wt list` is timed at these sizes (the issue's); status at every size.
PEER_SIZES = (10, 100, 300)


def main():
    args = parse_args()
    provision = os.path.realpath(args.provision)
    if not os.access(provision, os.X_OK):
        sys.exit(f"bench: no provision binary at {provision} (cargo build --release)")
    for tool in ("git", "sqlite3"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: needs {tool} on PATH")
    wt = install_worktrunk(args.target) if args.peers else None

    work = tempfile.mkdtemp(prefix="provision-bench-")
    try:
        env = hermetic_env(work)
        app = os.path.join(work, "app")
        generate_repo(app, args.files, args.migrations, env)
        bench = Bench(app, env, provision, wt)
        results = []
        results += bench.new_against_git(args.runs)
        results += bench.sqlite_migrations(args.runs, args.many, args.files, work)
        results += bench.verify_against_git_status(args.runs)
        results += bench.listing_growth(args.sizes, args.runs)
        results += bench.migration_throughput(os.path.join(work, "mig"), args.statements,
                                              args.runs)
        report = render(results, args, machine())
        print(report)
        write(args.out, report, results)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def parse_args():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--provision", default=os.path.join(target, "release", "provision"),
                   help="the binary to measure (default: the release build)")
    p.add_argument("--runs", type=int, default=15, help="rounds per group (default 15)")
    p.add_argument("--files", type=int, default=3000, help="tracked files (default 3000)")
    p.add_argument("--migrations", type=int, default=20, help="migrations (default 20)")
    p.add_argument("--many", type=int, default=200,
                   help="migrations of the SQLite `new` compared with none (default 200)")
    p.add_argument("--sizes", default="10,100,300,1000",
                   help="sandbox counts for status and gc (default 10,100,300,1000)")
    p.add_argument("--statements", type=int, default=100_000,
                   help="statements in the migration timed against sqlite3 (default 100000)")
    p.add_argument("--peers", action="store_true",
                   help=f"also time worktrunk {WORKTRUNK} (installed into target/peers if missing)")
    p.add_argument("--out", default=os.path.join(target, "bench", "results.md"),
                   help="where the Markdown report goes; JSON goes beside it")
    p.add_argument("--keep", action="store_true", help="keep the generated repository")
    args = p.parse_args()
    args.sizes = [int(n) for n in args.sizes.split(",")]
    args.target = target
    return args


def install_worktrunk(target):
    """worktrunk's `wt`, from crates.io into target/peers, once."""
    root = os.path.join(target, "peers")
    wt = os.path.join(root, "bin", "wt")
    version = ""
    if os.access(wt, os.X_OK):
        version = subprocess.run([wt, "--version"], capture_output=True, text=True).stdout
    if WORKTRUNK not in version:
        print(f"bench: installing worktrunk {WORKTRUNK} into {root}", file=sys.stderr)
        subprocess.run(["cargo", "install", "worktrunk", "--version", WORKTRUNK, "--locked",
                        "--root", root], check=True)
    return wt


def hermetic_env(work):
    """The tests' hermetic git: no user or system config, a fixed identity."""
    home = os.path.join(work, "home")
    os.makedirs(home)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "PROVISION_", "WORKTRUNK_"))}
    env.update(HOME=home, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               NO_COLOR="1", GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    # worktrunk, run without a terminal, never prompts; its worktrees go
    # beside provision's, named after the branch.
    wt_config = os.path.join(home, "worktrunk.toml")
    with open(wt_config, "w") as f:
        f.write('worktree-path = "../{{ branch | sanitize }}"\n'
                "skip-shell-integration-prompt = true\n")
    env["WORKTRUNK_CONFIG_PATH"] = wt_config
    return env


def generate_repo(app, files, migrations, env, others=0):
    """A web app's shape: source files in nested folders, SQL migrations, and
    untracked config (.env, .dev.vars, .npmrc, a node_modules of 200 files).
    `others`: as many files as migrations would be, of the same text, in a
    folder that holds no migrations (so git checks out as much)."""
    for i in range(files):
        folder = os.path.join(app, "src", f"area{i % 30:02}", f"module{i % 7}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"file{i:04}.ts"), "w") as f:
            f.write(f"// file {i}\n" + f"export const value{i} = {i};\n" * 40)
    os.makedirs(os.path.join(app, "migrations"))
    for i in range(1, migrations + 1):
        with open(os.path.join(app, "migrations", f"{i:04}_table_{i}.sql"), "w") as f:
            f.write(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
                    f"CREATE INDEX t{i}_name ON t{i} (name);\n"
                    f"INSERT INTO t{i} (name) VALUES ('a'), ('b'), ('c');\n")
    if others:
        os.makedirs(os.path.join(app, "docs", "sql"))
    for i in range(1, others + 1):
        with open(os.path.join(app, "docs", "sql", f"{i:04}_table_{i}.sql"), "w") as f:
            f.write(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
                    f"CREATE INDEX t{i}_name ON t{i} (name);\n"
                    f"INSERT INTO t{i} (name) VALUES ('a'), ('b'), ('c');\n")
    with open(os.path.join(app, ".gitignore"), "w") as f:
        f.write("node_modules/\n.env\n.env.local\n.dev.vars\n.npmrc\n")
    with open(os.path.join(app, ".worktreeinclude"), "w") as f:
        f.write("".join(entry + "\n" for entry in INCLUDES))
    with open(os.path.join(app, "package.json"), "w") as f:
        f.write('{"name": "bench-app", "private": true}\n')
    subprocess.run(["git", "init", "-q", "-b", "main", app], env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=app, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "app"], cwd=app, env=env, check=True)
    # Packed, as a real repository's objects are: 3,000 loose objects would
    # make every checkout slower than anyone's is.
    subprocess.run(["git", "gc", "-q"], cwd=app, env=env, check=True)
    # Untracked, after the commit: what each sandbox links to.
    for name, text in [(".env", "API_KEY=secret\n"), (".dev.vars", "TOKEN=abc\n"),
                       (".npmrc", "fund=false\n")]:
        with open(os.path.join(app, name), "w") as f:
            f.write(text)
    for i in range(200):
        pkg = os.path.join(app, "node_modules", f"pkg{i % 20}")
        os.makedirs(pkg, exist_ok=True)
        with open(os.path.join(pkg, f"index{i}.js"), "w") as f:
            f.write("module.exports = 1;\n")


MANUAL_RECIPE = """set -e
git worktree add -q -b "$1" "../$1"
for entry in .env .dev.vars .npmrc node_modules; do ln -s "$PWD/$entry" "../$1/$entry"; done
printf 'DB_NAME=%s\\nPORT=%s\\n' "$1" 4100 >> "../$1/.env.local"
for m in migrations/*.sql; do sqlite3 "../$1.sqlite" < "$m"; done
"""


class Bench:
    def __init__(self, app, env, provision, wt=None):
        self.app, self.env, self.provision, self.wt = app, env, provision, wt
        self.counter = 0

    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def run(self, argv, cwd):
        """Runs argv in cwd to completion; returns (seconds, peak RSS in KiB)."""
        silent = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
        os.chdir(cwd)  # posix_spawn has no chdir; this process is single-threaded
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, self.env, file_actions=silent)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"bench: `{' '.join(argv)}` failed in {cwd}; rerun it by hand")
        return elapsed, usage.ru_maxrss

    def quiet(self, argv, cwd=None):
        subprocess.run(argv, cwd=cwd or self.app, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rounds(self, runs, commands):
        """commands: label -> (setup, timed, teardown); each a function of the
        round. Order rotates every round. Returns label -> samples."""
        samples = {label: [] for label in commands}
        labels = list(commands)
        made = []
        for r in range(runs):
            order = labels[r % len(labels):] + labels[:r % len(labels)]
            for label in order:
                setup, timed, teardown = commands[label]
                arg = setup()
                # Each command starts with nothing of the last one left to
                # write back, so no one pays for another's dirty pages, and
                # with the file system's journal settled after that.
                os.sync()
                time.sleep(SETTLE)
                samples[label].append(timed(arg))
                made.append((teardown, arg))
        # Torn down at the end: deleting a 3,000-file worktree leaves the
        # file system busy for a while after, and every command after such
        # a delete took several times as long as it does otherwise.
        for teardown, arg in made:
            teardown(arg)
        # ... and the next group starts once the file system has settled.
        os.sync()
        time.sleep(TEARDOWN_SETTLE)
        return samples

    def new_against_git(self, runs):
        app = self.app
        git = "git worktree add -b X (default checkout)"
        parallel = "git -c checkout.workers=0 worktree add -b X"
        new = "provision new X"
        manual = "manual recipe (shell script)"
        def remove_plain(name):
            self.quiet(["git", "worktree", "remove", "--force", f"../{name}"])
            self.quiet(["git", "branch", "-D", name])
        def remove_manual(name):
            remove_plain(name)
            os.remove(os.path.join(os.path.dirname(app), f"{name}.sqlite"))
        def remove_sandbox(name):
            self.quiet([self.provision, "remove", "--force", name])
        memory = []
        def timed_new(name):
            seconds, rss = self.run([self.provision, "new", name], cwd=app)
            memory.append(rss)
            return seconds
        commands = {
            git: (lambda: self.fresh("plain"),
                  lambda n: self.run(["git", "worktree", "add", "-q", "-b", n, f"../{n}"], cwd=app)[0],
                  remove_plain),
            parallel: (lambda: self.fresh("parallel"),
                       lambda n: self.run(["git", "-c", "checkout.workers=0", "worktree", "add",
                                           "-q", "-b", n, f"../{n}"], cwd=app)[0],
                       remove_plain),
            new: (lambda: self.fresh("sandbox"), timed_new, remove_sandbox),
            manual: (lambda: self.fresh("manual"),
                     lambda n: self.run(["sh", "-c", MANUAL_RECIPE, "manual", n], cwd=app)[0],
                     remove_manual),
        }
        peer = "wt switch --create X (worktrunk)"
        if self.wt:
            # No shell integration and no terminal: wt makes the worktree
            # (../X, by the bench's config) and says it cannot cd there.
            commands[peer] = (lambda: self.fresh("peer"),
                              lambda n: self.run([self.wt, "switch", "--create", n], cwd=app)[0],
                              remove_plain)
        samples = self.rounds(runs, commands)
        results = [
            Result("new", git, samples[git]),
            Result("new", parallel, samples[parallel], baseline=git),
            Result("new", new, samples[new], baseline=git, target=1.0),
            Result("new", manual, samples[manual], baseline=git),
        ]
        if self.wt:
            results += [
                Result("new", peer, samples[peer], baseline=git),
                Result("new", "provision new X, against wt", samples[new], baseline=peer),
            ]
        # wait4 reports the largest of provision and the git it runs.
        results.append(Result("new", "provision new X: peak memory",
                              [kib / 1024 for kib in memory], unit="MiB", limit=64))
        return results

    def sqlite_migrations(self, runs, many, files, work):
        """`provision new` (SQLite) in two repositories alike but for their
        migrations: none, and MANY. The first holds MANY files of the same
        text elsewhere, so that git checks out as much in both and the
        ratio is what the migrations cost provision. In each, a first
        `new` (not timed) fills the store of migrated states, as any
        earlier sandbox would."""
        none_app = os.path.join(work, "none", "app")
        many_app = os.path.join(work, "many", "app")
        generate_repo(none_app, files, 0, self.env, others=many)
        generate_repo(many_app, files, many, self.env)
        for app in (none_app, many_app):
            self.quiet([self.provision, "new", "warm"], cwd=app)
        def timed(app):
            return lambda name: self.run([self.provision, "new", name], cwd=app)[0]
        def remove(app):
            return lambda name: self.quiet([self.provision, "remove", "--force", name], cwd=app)
        none = "provision new X (sqlite, no migrations)"
        with_many = f"provision new X (sqlite, {many} migrations)"
        samples = self.rounds(runs, {
            none: (lambda: self.fresh("none"), timed(none_app), remove(none_app)),
            with_many: (lambda: self.fresh("many"), timed(many_app), remove(many_app)),
        })
        return [
            Result("migrations", none, samples[none]),
            Result("migrations", with_many, samples[with_many], baseline=none, target=1.05),
        ]

    def verify_against_git_status(self, runs):
        self.quiet([self.provision, "new", "steady"])
        tree = os.path.join(os.path.dirname(self.app), "worktree-steady")
        # A worktree someone works in: git has refreshed its index once,
        # after the second its files were written in (until then every
        # `git status` re-reads every file, git's "racily clean" rule).
        time.sleep(1.1)
        self.quiet(["git", "status", "--porcelain"], cwd=tree)
        none = (lambda: None, None, lambda _: None)
        def timed(argv):
            return lambda _: self.run(argv, cwd=tree)[0]
        status = "git status (in the worktree)"
        verify = "provision verify"
        apply = "provision apply (no-op)"
        samples = self.rounds(runs, {
            status: (none[0], timed(["git", "status", "--porcelain"]), none[2]),
            verify: (none[0], timed([self.provision, "verify"]), none[2]),
            apply: (none[0], timed([self.provision, "apply"]), none[2]),
        })
        self.quiet([self.provision, "remove", "--force", "steady"])
        return [
            Result("verify", status, samples[status]),
            Result("verify", verify, samples[verify], baseline=status, target=1.0),
            Result("verify", apply, samples[apply], baseline=verify, target=1.5),
        ]

    def listing_growth(self, sizes, runs):
        results = []
        made = 0
        for size in sizes:
            first = made + 1
            while made < size:
                made += 1
                self.quiet([self.provision, "new", f"many{made}"])
            # Worktrees someone works in: git has refreshed each index once,
            # after the second its files were written in (until then every
            # `git status` re-reads every file, git's "racily clean" rule;
            # `wt list` asks git with --no-optional-locks, which never
            # refreshes it).
            time.sleep(1.1)
            parent = os.path.dirname(self.app)
            for n in range(first, made + 1):
                self.quiet(["git", "status", "--porcelain"],
                           cwd=os.path.join(parent, f"worktree-many{n}"))
            memory = []

            def timed_status(_):
                seconds, rss = self.run([self.provision, "status"], cwd=self.app)
                memory.append(rss)
                return seconds

            def timed(argv):
                return (lambda: None, lambda _: self.run(argv, cwd=self.app)[0], lambda _: None)
            status = f"provision status ({size} sandboxes)"
            gc = f"provision gc --dry-run ({size} sandboxes)"
            listing = f"git worktree list ({size} worktrees)"
            peer = f"wt list ({size} worktrees, worktrunk)"
            commands = {
                listing: timed(["git", "worktree", "list", "--porcelain"]),
                status: (lambda: None, timed_status, lambda _: None),
                gc: timed([self.provision, "gc", "--dry-run"]),
            }
            with_peer = self.wt and size in PEER_SIZES
            if with_peer:
                commands[peer] = timed([self.wt, "list"])
            samples = self.rounds(runs, commands)
            # The targets: under a second up to 100, 3 s at 1,000.
            limit = 1.0 if size <= 100 else 3.0 if size == 1000 else None
            results += [
                Result("growth", listing, samples[listing]),
                Result("growth", status, samples[status], limit=limit),
                Result("growth", f"provision status ({size} sandboxes): peak memory",
                       [kib / 1024 for kib in memory], unit="MiB", limit=64),
                Result("growth", gc, samples[gc], limit=1.0 if size <= 100 else None),
            ]
            if with_peer:
                results += [
                    Result("growth", peer, samples[peer]),
                    Result("growth", f"provision status ({size}), against wt list",
                           samples[status], baseline=peer, target=0.5 if size == 100 else None),
                ]
        return results

    def migration_throughput(self, repo, statements, runs):
        """One migration of `statements` statements (a table, then rows),
        applied by `provision apply` in a plain worktree, against the
        sqlite3 CLI reading the same file in one transaction."""
        os.makedirs(os.path.join(repo, "migrations"))
        script = os.path.join(repo, "migrations", "0001_rows.sql")
        with open(script, "w") as f:
            f.write("CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);\n")
            for i in range(1, statements):
                f.write(f"INSERT INTO rows (name, n) VALUES ('row {i}', {i});\n")
        with open(os.path.join(repo, "README"), "w") as f:
            f.write("migration throughput\n")
        subprocess.run(["git", "init", "-q", "-b", "main", repo], env=self.env, check=True)
        self.quiet(["git", "add", "-A"], cwd=repo)
        self.quiet(["git", "commit", "-q", "-m", "rows"], cwd=repo)
        parent = os.path.dirname(repo)

        def plain_worktree():
            name = self.fresh("rows")
            self.quiet(["git", "worktree", "add", "-q", "-b", name, f"../{name}"], cwd=repo)
            # The store of migrated states would serve the migration from
            # the second round on: emptied, so that each round runs it
            # (and stores the result, as a first sandbox does).
            store = os.path.join(repo, ".git", "provision", "sqlite")
            for entry in glob.glob(os.path.join(store, "provision_store_*")):
                os.remove(entry)
            return name

        def fresh_file():
            return os.path.join(parent, f"{self.fresh('cli')}.sqlite")

        cli = f"sqlite3 CLI, the same file in one transaction ({statements:,} statements)"
        apply = f"provision apply, a new database ({statements:,} statements)"
        samples = self.rounds(runs, {
            cli: (fresh_file,
                  lambda db: self.run(["sqlite3", db, "BEGIN;", f".read {script}", "COMMIT;"],
                                      cwd=parent)[0],
                  os.remove),
            apply: (plain_worktree,
                    lambda n: self.run([self.provision, "apply"], cwd=os.path.join(parent, n))[0],
                    lambda n: self.quiet([self.provision, "remove", "--force", n], cwd=repo)),
        })
        return [
            Result("migrations", cli, samples[cli]),
            Result("migrations", apply, samples[apply], baseline=cli, target=2.0),
        ]


class Result:
    def __init__(self, group, label, samples, unit="s", baseline=None, target=None, limit=None):
        self.group, self.label, self.samples, self.unit = group, label, samples, unit
        self.baseline, self.target, self.limit = baseline, target, limit
        self.median = statistics.median(samples)

    def shown(self, value):
        return f"{value * 1000:.1f} ms" if self.unit == "s" else f"{value:.1f} {self.unit}"


def render(results, args, machine_line):
    by_label = {r.label: r for r in results}
    lines = [
        f"# provision benchmarks",
        "",
        f"{machine_line}; {args.files} tracked files, {args.migrations} migrations, "
        f"{len(INCLUDES)} include entries, {args.runs} rounds per group, order rotated each round.",
        "",
        "| command | median | min | max | ratio | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        ratio = target = ""
        if r.baseline:
            value = r.median / by_label[r.baseline].median
            ratio = f"{value:.2f}"
            if r.target is not None:
                target = f"≤ {r.target} × {short(r.baseline)}: " + ("met" if value <= r.target else "MISSED")
        if r.limit is not None:
            met = r.median <= r.limit
            target = f"< {r.shown(r.limit)}: " + ("met" if met else "MISSED")
        lines.append(f"| {r.label} | {r.shown(r.median)} | {r.shown(min(r.samples))} | "
                     f"{r.shown(max(r.samples))} | {ratio} | {target} |")
    return "\n".join(lines) + "\n"


def short(label):
    return label.split(" (")[0]


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} × {cpu}, {git}"


def write(out, report, results):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(report)
    stem = os.path.splitext(out)[0]
    with open(stem + ".json", "w") as f:
        json.dump([{"group": r.group, "command": r.label, "unit": r.unit,
                    "median": r.median, "min": min(r.samples), "max": max(r.samples),
                    "baseline": r.baseline, "samples": r.samples} for r in results], f, indent=2)
    print(f"wrote {out} and {stem}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
