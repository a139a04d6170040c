#!/usr/bin/env python3
"""provision's chaos harness: kill -9, syscall faults and hostile state.

    cargo build --release --locked && python3 chaos/chaos.py [--quick] [--seed N]
        [--rounds N] [--pg-rounds N] [--kinds kill,syscall,hostile,gitstep,pgkill,pgstep]
        [--binary PATH] [--only SPEC]

Runs the real `provision` binary on generated repositories shaped like a real
app (a `.worktreeinclude` with `.env`, `.dev.vars`, `.npmrc` and a
`node_modules` folder, 20 SQL migrations, a tracked symlink), with the user's
own files in place: an uncommitted edit, untracked and ignored files and an
unowned SQLite database in the main checkout, the same in two "precious"
sandboxes (one of them locked with `git worktree lock`), an unowned SQLite
file where a sandbox's database would go, and victim files and symlinks next
to the repository. Six kinds of fault:

  kill     8 agents at once run `new`/`apply`/`remove`/`gc` on names of their
           own, each run killed with SIGKILL (its whole process group) at a
           random point, round after round;
  syscall  each state-changing syscall of `new`, `apply`, `remove` and `gc`
           (provision and the git it runs alike: `strace -f`) failed in turn
           with EIO and ENOSPC, K = 1, 2, ... until the command no longer
           reaches a K-th call; and, for fsync, rename, mkdir, symlink,
           unlink and link, the process SIGKILLed at its K-th call;
  hostile  forged (hash recomputed), truncated and symlinked locks, registry
           records and claims, a real folder where the lock belongs, a
           cut-short worktree, a moved worktree, a squatting database;
  gitstep  one git step alone (`git worktree add`, `worktree remove`,
           `worktree prune`, `branch -D`, `status`) failed with EIO or
           SIGKILLed at its K-th unlink, rename, write or openat, through a
           wrapper `git` first on PATH;
  pgkill   the kill kind with `[database] kind = "postgres"` on a private
           server it starts on loopback (initdb + pg_ctl, as the postgres
           user when root; stopped at the end): 6 agents run `new`,
           `apply`, `db reset`, `remove` and `gc`, each killed at a random
           point; the `db refill` that `new` starts in a process group of
           its own is SIGKILLed at random too, and the main branch gains a
           migration every few rounds (new store entries for gc to collect);
  pgstep   on such a server, each PostgreSQL step (`new` taking a spare,
           copying an entry, migrating past the store; `db reset`, `db
           refill`, `gc` with a set-aside and an orphan database, `remove`)
           SIGKILLed before its K-th message to the server or as it reads
           the K-th answer (`strace -e inject=sendto|recvfrom:signal=KILL`),
           K = 1, 2, ...: every gap between two statements, reproducibly.

After each fault it runs the documented recovery (`provision apply` in the
worktree, `provision remove NAME`, `provision gc`) and checks: the sandbox
verifies clean or nothing of it is left (no worktree, git entry, record,
database file or branch); the main checkout is byte for byte as it was
(every file, untracked and ignored ones included, and symlink targets); no
user file is lost or changed; no database provision did not create is
touched; nothing outside the repository's folders is written or deleted;
every run ends in exit 0 or a clear `error:` line, never a panic or a hang.
On PostgreSQL also (psql -At): no database named as a sandbox's, a store
entry, a spare or one set aside is unmarked; the user's decoys (an unmarked
database named as a sandbox's would be; another clone's sandbox, set-aside,
spare, store entry and half-made databases) are never dropped, renamed or
re-marked; and once every sandbox is removed and gc ran twice, nothing of
provision's is left but the newest store entries gc keeps and one spare
each (no provision_new_*, no *_aside_*, no sandbox database, no record
under .git/provision/creating/ or aside/).

Prints a tally and every violation with what reproduces it, marks the ones
issue 12 already lists as KNOWN, and exits 1 if there was any violation.
Python 3 standard library only, plus git, strace for the syscall, gitstep
and pgstep kinds, and PostgreSQL's initdb, pg_ctl and psql for pgkill and pgstep.
Work files go to /dev/shm when it has room (restoring a world before each
fault is 20x faster there than on a virtual disk), else to $TMPDIR.
The kill kind depends on timing: the same --seed draws the same steps and
kill delays, but where a kill lands can differ from run to run.
"""

import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ADDING = "provision new: being created"
REPO = "app"
# Where the user puts what they move out of a worktree (not beside-the-repo victims).
USER_KEPT = "user-kept"
INCLUDES = [".env", ".dev.vars", ".npmrc", "node_modules"]
PRECIOUS = ["keep-a", "keep-b"]
SQUATTER = "squatter"  # a name whose database file exists, unowned

# ----------------------------------------------------------------------------
# BLAKE3 (the lock's hash), pure Python: small inputs only.

_M = 0xFFFFFFFF
_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT = 1, 2, 4, 8


def _g(s, a, b, c, d, x, y):
    s[a] = (s[a] + s[b] + x) & _M
    v = s[d] ^ s[a]
    s[d] = ((v >> 16) | (v << 16)) & _M
    s[c] = (s[c] + s[d]) & _M
    v = s[b] ^ s[c]
    s[b] = ((v >> 12) | (v << 20)) & _M
    s[a] = (s[a] + s[b] + y) & _M
    v = s[d] ^ s[a]
    s[d] = ((v >> 8) | (v << 24)) & _M
    s[c] = (s[c] + s[d]) & _M
    v = s[b] ^ s[c]
    s[b] = ((v >> 7) | (v << 25)) & _M


def _compress(cv, words, counter, block_len, flags):
    s = list(cv) + list(_IV[:4]) + [counter & _M, (counter >> 32) & _M, block_len, flags]
    m = list(words)
    for r in range(7):
        _g(s, 0, 4, 8, 12, m[0], m[1])
        _g(s, 1, 5, 9, 13, m[2], m[3])
        _g(s, 2, 6, 10, 14, m[4], m[5])
        _g(s, 3, 7, 11, 15, m[6], m[7])
        _g(s, 0, 5, 10, 15, m[8], m[9])
        _g(s, 1, 6, 11, 12, m[10], m[11])
        _g(s, 2, 7, 8, 13, m[12], m[13])
        _g(s, 3, 4, 9, 14, m[14], m[15])
        if r < 6:
            m = [m[i] for i in _PERM]
    return [s[i] ^ s[i + 8] for i in range(8)]


def _words(block):
    block = block + bytes(64 - len(block))
    return [int.from_bytes(block[i:i + 4], "little") for i in range(0, 64, 4)]


def _chunk_cv(chunk, index, root):
    cv = list(_IV)
    blocks = [chunk[i:i + 64] for i in range(0, len(chunk), 64)] or [b""]
    for n, block in enumerate(blocks):
        flags = (_CHUNK_START if n == 0 else 0) | (_CHUNK_END if n == len(blocks) - 1 else 0)
        if root and n == len(blocks) - 1:
            flags |= _ROOT
            index = 0
        cv = _compress(cv, _words(block), index, len(block), flags)
    return cv


def _subtree(chunks, start, root):
    if len(chunks) == 1:
        return _chunk_cv(chunks[0], start, root)
    left = 1 << ((len(chunks) - 1).bit_length() - 1)
    words = _subtree(chunks[:left], start, False) + _subtree(chunks[left:], start + left, False)
    return _compress(_IV, words, 0, 64, _PARENT | (_ROOT if root else 0))


def blake3_hex(data):
    chunks = [data[i:i + 1024] for i in range(0, len(data), 1024)] or [b""]
    return b"".join(w.to_bytes(4, "little") for w in _subtree(chunks, 0, True)).hex()


assert blake3_hex(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
assert blake3_hex(b"abc") == "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


def lock_text(obj):
    """A lock as provision writes it: the hash over the compact canonical JSON
    with the hash field left out (src/sandbox/lock.rs), then pretty JSON."""
    body = {k: v for k, v in obj.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body["hash"] = "blake3:" + blake3_hex(canonical.encode())
    return json.dumps(body, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------
# Processes


class Res:
    def __init__(self, argv, cwd, rc, out, err, secs, hung=False, killed=False):
        self.argv, self.cwd, self.rc, self.out, self.err = argv, cwd, rc, out, err
        self.secs, self.hung, self.killed = secs, hung, killed

    def panicked(self):
        return "panicked at" in self.err or self.rc == 101

    def error_line(self):
        for line in self.err.splitlines():
            if line.startswith("error:"):
                return line
        # gc reports an orphan it could not take down on stdout, by name,
        # with the error, and exits 2.
        for line in self.out.splitlines():
            if line.startswith("failed "):
                return line
        return None

    def brief(self):
        """The line that says what went wrong: the panic, the error, else the last."""
        lines = self.err.strip().splitlines()
        text = next((l for l in lines if "panicked" in l), None) or self.error_line() or (lines or [""])[-1]
        return text[:300]


def spawn(argv, cwd, env):
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def killgroup(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(argv, cwd, env, timeout, kill_after=None):
    """Runs argv in a process group of its own; kills the whole group after
    `kill_after` seconds (a fault) or `timeout` (a hang)."""
    start = time.monotonic()
    try:
        proc = spawn(argv, cwd, env)
    except FileNotFoundError as e:
        if os.path.isdir(cwd):
            raise
        # The folder to run in vanished (another agent's gc): as a user
        # would see it, the command cannot start there.
        return Res(argv, cwd, 2, "", f"error: harness: {cwd} is gone ({e.strerror})", 0.0)
    killed = False
    if kill_after is not None:
        try:
            out, err = proc.communicate(timeout=kill_after)
            return Res(argv, cwd, proc.returncode, out.decode(errors="replace"),
                       err.decode(errors="replace"), time.monotonic() - start)
        except subprocess.TimeoutExpired:
            killgroup(proc)
            killed = True
            out, err = proc.communicate()
            return Res(argv, cwd, proc.returncode, out.decode(errors="replace"),
                       err.decode(errors="replace"), time.monotonic() - start, killed=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        killgroup(proc)
        out, err = proc.communicate()
        hung = True
    return Res(argv, cwd, proc.returncode, out.decode(errors="replace"),
               err.decode(errors="replace"), time.monotonic() - start, hung=hung, killed=killed)


# ----------------------------------------------------------------------------
# Snapshots


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()[:16]


def entry(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return ("symlink", os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", oct(st.st_mode & 0o777))
    if stat.S_ISREG(st.st_mode):
        try:
            return ("file", file_hash(path), oct(st.st_mode & 0o777))
        except OSError as e:
            return ("unreadable", str(e))
    return ("other", stat.S_IFMT(st.st_mode))


def snapshot(top, skip=lambda rel: False):
    """Every entry under `top` (symlinks not followed): kind, content hash or
    link target, mode."""
    out = {}
    if not os.path.lexists(top):
        return out
    for dirpath, dirnames, filenames in os.walk(top):
        reldir = os.path.relpath(dirpath, top)
        kept = []
        for name in sorted(dirnames) + sorted(filenames):
            rel = os.path.normpath(os.path.join(reldir, name))
            if skip(rel):
                continue
            e = entry(os.path.join(dirpath, name))
            if e is None:
                continue
            out[rel] = e
            if name in dirnames and e[0] == "dir":
                kept.append(name)
        dirnames[:] = kept
    return out


def diff(before, after, limit=8):
    lines = []
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel), after.get(rel)
        if a == b:
            continue
        if b is None:
            lines.append(f"deleted {rel} (was {a[0]})")
        elif a is None:
            lines.append(f"created {rel} ({b[0]})")
        else:
            lines.append(f"changed {rel}: {a} -> {b}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


def findings(v):
    """What a `verify` run says is wrong, in a line."""
    if v.rc == 1:
        lines = [l for l in v.out.splitlines()
                 if l and l[0] not in " +-@" and "finding(s)" not in l]
        return "; ".join(lines[:3])[:240] or v.out.strip()[-200:]
    return v.brief()


def slug(name):
    out = ""
    for ch in name.lower():
        if ch.isascii() and (ch.islower() or ch.isdigit()):
            out += ch
        elif not out.endswith("_"):
            out += "_"
    return out.strip("_") or "_"


# ----------------------------------------------------------------------------
# The report


class Violation:
    def __init__(self, kind, cls, what, repro):
        self.kind, self.cls, self.what, self.repro = kind, cls, what, repro
        # The kill kind's classes hold for pgkill's runs alike.
        self.known = KNOWN.get(cls) or KNOWN.get(re.sub(r"^pgkill/", "kill/", cls))


# What issue 12 already says. "listed": the issue names this very failure;
# "class": the issue names the class (its fix should cover it) but not this
# instance. Everything else is NEW. The checks are the same for all three.
KNOWN = {
    "hostile/lock-link-parent": ("listed", "issue 12 #1: a forged lock link `../victim` is unlinked"),
    "hostile/lock-link-absolute": ("listed", "issue 12 #1: a forged lock link `/abs/path` is unlinked"),
    "hostile/lock-link-other-worktree": ("class", "issue 12 #1: lock paths must not contain `..`"),
    "hostile/lock-link-into-main": ("class", "issue 12 #1: lock paths must not contain `..`"),
    "hostile/record-ghost-with-another-sandboxs-database": (
        "class", "issue 12 #1: registry records are untrusted input"),
    "hostile/record-id-traversal": ("class", "issue 12 #1: registry records are untrusted input"),
    "hostile/claim-forged-other-name": ("class", "issue 12 #1: claims are untrusted input"),
    "hostile/claim-truncated-empty": ("class", "issue 12 #1: claims are untrusted input"),
    "hostile/cut-short-then-apply-then-gc": ("listed", "issue 12 #2: killed new, apply, then gc loses work"),
    "hostile/moved-worktree-then-gc": ("listed", "issue 12 #3: moved worktree, gc drops its database"),
    "hostile/lock-is-a-folder-with-user-files": ("listed", "issue 12 #4: remove deletes a folder at provision.lock"),
    "hostile/record-truncated": ("listed", "issue 12 #8: one corrupt record stops everything"),
    "kill/gc-removed-worktree-with-work": ("listed", "issue 12 #2: killed new, apply, then gc loses work"),
    "kill/apply-left-git-lock": ("listed", "issue 12 #2: apply completes a killed new but leaves git's lock"),
    "syscall/apply-left-git-lock": ("listed", "issue 12 #2: apply completes a killed new but leaves git's lock"),
    "syscall/gc-removed-worktree-with-work": ("listed", "issue 12 #2: killed new, apply, then gc loses work"),
    "kill/branch-left": ("listed", "issue 12 #5: killed runs leave branches"),
    "syscall/failed-new-left-branch": ("listed", "issue 12 #5: a failed new leaves its branch"),
    "syscall/branch-left": ("listed", "issue 12 #5: failed runs leave branches"),
}


def tag_of(known):
    if not known:
        return "NEW"
    return f"KNOWN {known[1]}" if known[0] == "listed" else f"KNOWN CLASS, unlisted instance: {known[1]}"


class Tally:
    def __init__(self):
        self.counts = collections.defaultdict(collections.Counter)
        self.violations = []
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.seconds = {}

    def count(self, kind, what, n=1):
        with self.lock:
            self.counts[kind][what] += n

    def add(self, kind, cls, what, repro):
        v = Violation(kind, cls, what, repro)
        with self.lock:
            self.violations.append(v)
        say(f"  VIOLATION [{tag_of(v.known)}] {cls}: {what}\n      reproduce: {repro}")
        return v


QUIET = False


def say(text):
    if not QUIET:
        print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# A world: one generated repository with its sandboxes and victims.


class World:
    # A key the database fills in itself: SQLite's rowid alias.
    ID_COLUMN = "INTEGER PRIMARY KEY"

    def __init__(self, h, root):
        self.h = h
        self.root = root
        self.app = os.path.join(root, REPO)
        self.git_dir = os.path.join(self.app, ".git")
        self.sqlite_dir = os.path.join(self.git_dir, "provision", "sqlite")
        self.records_dir = os.path.join(self.git_dir, "provision", "sandboxes")
        self.victims = os.path.join(root, "victims")
        self.work = {}  # worktree path -> {rel: entry} of the user's files in it
        self.status0 = {}  # worktree path -> git status lines at baseline

    # -- running things --

    def wt(self, name):
        return os.path.join(self.root, "worktree-" + name.replace("/", "-"))

    def prov(self, args, cwd=None, timeout=None, kill_after=None):
        return run([self.h.binary] + list(args), cwd or self.app, self.h.env,
                   timeout or self.h.timeout, kill_after)

    def recover(self, args, cwd=None):
        """A recovery step, as a person runs it: when git stops on a lock file
        it left behind (a git run killed, or whose unlink failed, between
        taking a ref's lock and letting go of it), git says to delete it once
        no git process runs; the person does, and runs the step again."""
        r = self.prov(args, cwd)
        m = re.search(r"Unable to create '([^']+\.lock)': File exists", r.out + r.err)
        if r.rc != 0 and m and os.path.isfile(m.group(1)):
            os.unlink(m.group(1))
            self.h.tally.count("recovery", "git lock files left by git, deleted as git says")
            r = self.prov(args, cwd)
        return r

    def git(self, args, cwd=None, check=True):
        r = run(["git"] + list(args), cwd or self.app, self.h.env, 120)
        if check and r.rc != 0:
            raise RuntimeError(f"git {' '.join(args)} in {cwd or self.app}: {r.err.strip()}")
        return r.out

    def must(self, args, cwd=None):
        r = self.prov(args, cwd)
        if r.rc != 0:
            raise RuntimeError(f"setup: provision {' '.join(args)} failed ({r.rc}): {r.err.strip()}")
        return r

    # -- building --

    def build(self):
        """The app, its untracked config, the user's files, victims."""
        os.makedirs(self.app)
        w = lambda rel, text: write(os.path.join(self.app, rel), text)
        w("package.json", '{"name": "chaos-app", "private": true, "scripts": {"dev": "node src/index.js"}}\n')
        w("src/index.js", "console.log('app');\n")
        for i in range(40):
            w(f"src/area{i % 5}/mod{i}.js", f"export const v{i} = {i};\n" * 8)
        w("docs/v1.md", "# docs v1\n")
        os.symlink("v1.md", os.path.join(self.app, "docs/current"))
        for i in range(1, 21):
            w(f"migrations/{i:04}_table_{i}.sql",
              f"CREATE TABLE t{i} (id {self.ID_COLUMN}, name TEXT NOT NULL);\n"
              f"CREATE INDEX t{i}_name ON t{i} (name);\n"
              f"INSERT INTO t{i} (name) VALUES ('a'), ('b'), ('c');\n")
        w(".gitignore", "node_modules/\n.env\n.env.local\n.dev.vars\n.npmrc\ndata/\n*.swp\n")
        w(".worktreeinclude", "# shared with every worktree\n" + "".join(e + "\n" for e in INCLUDES))
        self.git(["init", "-q", "-b", "main"])
        self.git(["add", "-A"])
        self.git(["commit", "-q", "-m", "app"])
        # Untracked config every worktree links to.
        w(".env", "API_KEY=secret-main\nSHARED=1\n")
        w(".dev.vars", "TOKEN=abc\n")
        w(".npmrc", "fund=false\n")
        for p in range(6):
            w(f"node_modules/pkg{p}/package.json", f'{{"name": "pkg{p}"}}\n')
            w(f"node_modules/pkg{p}/index.js", f"module.exports = {p};\n")
        # The user's own files in the main checkout.
        w("src/index.js", "console.log('app');\n// main: an uncommitted edit\n")
        w("scratch.txt", "the user's untracked notes in the main checkout\n")
        os.symlink("src", os.path.join(self.app, "shortcut"))  # an untracked user symlink
        make_db(os.path.join(self.app, "data/dev.sqlite"), "main's own dev database")
        with open(os.path.join(self.git_dir, "info", "exclude"), "a") as f:
            f.write("# the user's own exclude line\n*.orig\n")
        # A database provision did not create, where sandbox `squatter`'s goes.
        make_db(self.db_path(SQUATTER), "not provision's")
        # Victims beside the repository.
        v = lambda rel, text: write(os.path.join(self.root, rel), text)
        v("victim.txt", "a file beside the repository\n")
        os.symlink("victim.txt", os.path.join(self.root, "victim-link"))
        v("victims/data.txt", "victim data\n")
        v("victims/dir/keep.txt", "a file in a folder beside the repository\n")
        v("victims/evil.json", "{}\n")
        os.symlink("data.txt", os.path.join(self.victims, "inner-link"))
        os.symlink(os.path.join(self.victims, "data.txt"), os.path.join(self.victims, "abs-link"))

    def precious(self):
        """Two sandboxes holding the user's work; keep-b is locked too."""
        for name in PRECIOUS:
            self.must(["new", name])
            self.add_work(name, precious=True)
        self.git(["worktree", "lock", "--reason", "the user's lock", self.wt("keep-b")])
        # A copy of a sandbox database, with provision's mark, beside the repo.
        shutil.copy(self.db_path("keep-a"), os.path.join(self.victims, "marked.sqlite"))

    def add_work(self, name, precious=False):
        wt = self.wt(name)
        append(os.path.join(wt, "src/area0/mod0.js"), f"// {name}: the user's unsaved edit\n")
        write(os.path.join(wt, f"notes/TODO-{slug(name)}.md"), f"{name}: untracked notes\n")
        rels = ["src/area0/mod0.js", f"notes/TODO-{slug(name)}.md"]
        if precious:
            append(os.path.join(wt, "src/area1/mod1.js"), "// staged edit\n")
            self.git(["add", "src/area1/mod1.js"], cwd=wt)
            make_db(os.path.join(wt, "data/local.sqlite"), f"{name}'s own database")
            rels += ["src/area1/mod1.js", "data/local.sqlite"]
        self.work[wt] = {rel: entry(os.path.join(wt, rel)) for rel in rels}
        self.status0[wt] = self.git_status(wt)

    def try_add_work(self, name):
        """add_work, or False when the worktree vanished meanwhile."""
        try:
            self.add_work(name)
            return True
        except (OSError, RuntimeError):
            self.work.pop(self.wt(name), None)
            self.status0.pop(self.wt(name), None)
            return False

    def drop_work(self, name):
        wt = self.wt(name)
        self.git(["checkout", "--", "src/area0/mod0.js"], cwd=wt, check=False)
        for rel in list(self.work.get(wt, {})):
            if rel.startswith("notes/"):
                rm(os.path.join(wt, rel))
        rm(os.path.join(wt, "notes"))
        self.work.pop(wt, None)
        self.status0.pop(wt, None)

    def git_status(self, wt):
        r = run(["git", "status", "--porcelain=v1", "-uall"], wt, self.h.env, 60)
        return sorted(r.out.splitlines()) if r.rc == 0 else [f"(git status failed: {r.err.strip()})"]

    def work_lost(self, name):
        """The user's files in sandbox `name` that are gone or changed."""
        wt = self.wt(name)
        lost = []
        for rel, e in self.work.get(wt, {}).items():
            now = entry(os.path.join(wt, rel))
            if now != e:
                lost.append(f"{rel} {'deleted' if now is None else 'changed'}")
        return lost

    # -- looking --

    def db_path(self, name):
        return os.path.join(self.sqlite_dir, f"{REPO}_{slug(name)}.sqlite")

    # The database hooks a world of another kind (PgWorld) overrides.

    def db_present(self, name):
        """What of sandbox `name`'s database is there (its files' names)."""
        db = self.db_path(name)
        return [os.path.basename(p) for p in (db, db + "-journal", db + "-wal") if os.path.exists(p)]

    def drop_db(self, name):
        """The user deletes sandbox `name`'s database behind provision's back."""
        for suffix in ("", "-journal", "-wal"):
            rm(self.db_path(name) + suffix)

    def db_entry(self, name):
        """What must not change in a precious sandbox's database, or None if gone."""
        return entry(self.db_path(name))

    def db_where(self, name):
        return os.path.relpath(self.db_path(name), self.root)

    def records(self):
        out = []
        try:
            names = sorted(os.listdir(self.records_dir))
        except FileNotFoundError:
            return out
        for n in names:
            if not n.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.records_dir, n)) as f:
                    rec = json.load(f)
                rec["_file"] = n
                out.append(rec)
            except (OSError, ValueError):
                out.append({"_file": n, "_corrupt": True})
        return out

    def worktree_list(self):
        r = run(["git", "worktree", "list", "--porcelain", "-z"], self.app, self.h.env, 60)
        out, cur = [], None
        for field in r.out.split("\0"):
            key, _, value = field.partition(" ")
            if key == "worktree":
                cur = {"path": value}
                out.append(cur)
            elif cur is not None and key:
                cur[key] = value if value else True
        return out

    def admin_of(self, wt):
        """The worktree's admin dir under .git/worktrees, found by its gitdir
        file, or by its folder's name (a half-written one has no gitdir)."""
        base = os.path.join(self.git_dir, "worktrees")
        try:
            ids = os.listdir(base)
        except FileNotFoundError:
            return None
        if os.path.basename(wt) in ids:
            return os.path.join(base, os.path.basename(wt))
        for i in ids:
            try:
                with open(os.path.join(base, i, "gitdir")) as f:
                    gd = f.read().strip()
            except OSError:
                continue
            if os.path.dirname(gd) == wt:
                return os.path.join(base, i)
        return None

    def has_branch(self, name):
        return run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{name}"],
                   self.app, self.h.env, 60).rc == 0

    def state(self, name, verify=True):
        wt = self.wt(name)
        s = {"dir": os.path.lexists(wt)}
        entry_ = next((w for w in self.worktree_list() if w["path"] == wt), None)
        s["entry"] = entry_ is not None
        s["locked"] = entry_.get("locked") if entry_ else None
        s["records"] = [r for r in self.records() if r.get("name") == name]
        s["corrupt"] = [r["_file"] for r in self.records() if r.get("_corrupt")]
        s["db"] = self.db_present(name)
        s["branch"] = self.has_branch(name)
        s["admin"] = self.admin_of(wt)
        s["verify"] = None
        s["checkout"] = []
        if verify and s["dir"] and os.path.isdir(wt):
            s["verify"] = self.prov(["verify"], cwd=wt)
            # A sandbox is the user's checkout too: git must see every
            # tracked file as committed (but for the user's own edits).
            if s["entry"]:
                expected = set(self.status0.get(wt, []))
                s["checkout"] = [l for l in self.git_status(wt) if l not in expected]
        return s

    def present(self, s):
        return (s["dir"] and s["entry"] and s["records"] and s["db"] and s["branch"]
                and s["verify"] is not None and s["verify"].rc == 0 and not s["checkout"])

    def gone(self, s, branch=True):
        return not (s["dir"] or s["entry"] or s["records"] or s["db"] or s["admin"]
                    or (branch and s["branch"]))

    def signature(self, s, want, branch=True):
        """A short name for how a state falls short, to class violations by."""
        short = dict(dir="folder", entry="git-entry", records="record", db="database", admin="admin-dir",
                     branch="branch")
        if want == "A":
            parts = ["no-" + short[k] for k in ("dir", "entry", "records", "db", "branch") if not s[k]]
            v = s["verify"]
            if v is not None and v.rc != 0:
                parts.append(f"verify-exit-{v.rc}")
            status = s.get("checkout") or []
            if status and all(re.match(r"\?\? (.*/)?\.provision-", l) for l in status):
                parts.append("provision-temp-file-in-git-status")
            elif status:
                parts.append("git-status-not-clean")
            return "+".join(parts) or "not clean"
        left = [short[k] for k in ("dir", "entry", "records", "db", "admin") if s[k]]
        if branch and s["branch"]:
            left.append("branch")
        return "left " + "+".join(left)

    def describe(self, s, branch=True):
        have = [k for k, label in [("dir", "worktree folder"), ("entry", "git worktree entry"),
                                   ("records", "registry record"), ("db", "database file"),
                                   ("admin", "git admin dir")] if s[k]]
        have_l = [dict(dir="worktree folder", entry="git worktree entry", records="registry record",
                       db="database file " + ",".join(s["db"]), admin="git admin dir")[k] for k in have]
        if branch and s["branch"]:
            have_l.append("branch")
        missing = [label for k, label in [("dir", "worktree folder"), ("entry", "git worktree entry"),
                                          ("records", "registry record"), ("db", "database file"),
                                          ("branch", "branch")] if not s[k]]
        if branch is False and "branch" in missing:
            missing.remove("branch")
        text = f"left: {', '.join(have_l) or 'nothing'}; missing: {', '.join(missing) or 'nothing'}"
        if s["locked"]:
            text += f"; git lock: {s['locked']!r}"
        if s["admin"] and not s["entry"]:
            try:
                text += f"; git admin dir {os.path.relpath(s['admin'], self.app)} holds only: " + ", ".join(
                    sorted(os.listdir(s["admin"])))
            except OSError:
                pass
        if s.get("checkout"):
            more = f" and {len(s['checkout']) - 6} more" if len(s["checkout"]) > 6 else ""
            text += f"; git status in it: {', '.join(s['checkout'][:6])}{more}"
        v = s["verify"]
        if v is not None and v.rc != 0:
            text += f"; verify exit {v.rc}: {findings(v)}"
        if s["corrupt"]:
            text += f"; corrupt records: {', '.join(s['corrupt'])}"
        return text

    # -- the invariants that hold whatever happened --

    def outside_skip(self, rel):
        top = rel.split(os.sep)[0]
        return top in (REPO, USER_KEPT) or top.startswith("worktree-")

    def main_git_bits(self):
        out = {}
        for rel in ["config", "HEAD"]:
            out[rel] = entry(os.path.join(self.git_dir, rel))
        for rel, e in snapshot(os.path.join(self.git_dir, "hooks")).items():
            out["hooks/" + rel] = e
        try:
            with open(os.path.join(self.git_dir, "info", "exclude")) as f:
                text = f.read()
        except OSError:
            text = "(missing)"
        text = re.sub(r"# >>> provision.*?# <<< provision <<<\n?", "", text, flags=re.S)
        out["info/exclude (outside provision's block)"] = text
        out["refs/heads/main"] = self.git(["rev-parse", "main"], check=False).strip()
        return out

    def baseline(self):
        self.base_main = snapshot(self.app, lambda rel: rel == ".git" or rel.startswith(".git" + os.sep))
        self.base_git = self.main_git_bits()
        self.base_outside = snapshot(self.root, self.outside_skip)
        self.base_squatter = entry(self.db_path(SQUATTER))
        self.base_precious_db = {n: self.db_entry(n) for n in PRECIOUS}

    def invariants(self, precious=True):
        """(class, what) for every invariant that no longer holds."""
        bad = []
        d = diff(self.base_main, snapshot(self.app, lambda rel: rel == ".git" or rel.startswith(".git" + os.sep)))
        if d:
            bad.append(("main-checkout-changed", "the main checkout changed: " + "; ".join(d)))
        now = self.main_git_bits()
        for k, v in self.base_git.items():
            if now.get(k) != v:
                bad.append(("main-git-changed", f"the main repository's {k} changed"))
        d = diff(self.base_outside, snapshot(self.root, self.outside_skip))
        if d:
            bad.append(("outside-written", "outside the repository's folders: " + "; ".join(d)))
        if entry(self.db_path(SQUATTER)) != self.base_squatter:
            bad.append(("unowned-db-touched",
                        f"the unowned database {self.db_path(SQUATTER)} was "
                        f"{'deleted' if not os.path.exists(self.db_path(SQUATTER)) else 'changed'}"))
        if precious:
            bad += self.precious_problems()
        for wt in sorted(self.work):
            name = os.path.basename(wt)[len("worktree-"):]
            if name in PRECIOUS:
                continue
            lost = self.work_lost(name)
            if lost:
                bad.append(("user-work-lost", f"sandbox {name}: the user's files: {', '.join(lost)}"))
        return bad

    def precious_problems(self):
        bad = []
        for name in PRECIOUS:
            wt = self.wt(name)
            lost = self.work_lost(name)
            if lost:
                bad.append(("user-work-lost", f"precious sandbox {name}: the user's files: {', '.join(lost)}"))
            if not os.path.isdir(wt):
                bad.append(("precious-sandbox-gone", f"precious sandbox {name}: its worktree folder is gone"))
                continue
            st = self.git_status(wt)
            if st != self.status0.get(wt, st):
                bad.append(("user-work-lost", f"precious sandbox {name}: git status was {self.status0[wt]}, now {st}"))
            e = self.db_entry(name)
            if e is None:
                bad.append(("precious-db-dropped", f"precious sandbox {name}: its database "
                            f"{self.db_where(name)} is gone"))
                continue
            if e != self.base_precious_db.get(name):
                bad.append(("precious-db-changed", f"precious sandbox {name}: its database changed: "
                            f"{self.base_precious_db.get(name)} -> {e}"))
            v = self.prov(["verify"], cwd=wt)
            if v.rc != 0:
                bad.append(("precious-sandbox-broken", f"precious sandbox {name}: verify exit {v.rc}: {findings(v)}"))
        return bad

    def residue(self):
        """Provision's temp files left anywhere (a killed write)."""
        found = []
        for top in [os.path.join(self.git_dir, "provision"), os.path.join(self.git_dir, "worktrees")]:
            for dirpath, _, files in os.walk(top):
                for f in files:
                    if f.startswith(".provision-"):
                        found.append(os.path.relpath(os.path.join(dirpath, f), self.root))
        for w in self.worktree_list()[1:]:
            p = w["path"]
            if os.path.isdir(p):
                for dirpath, dirs, files in os.walk(p):
                    dirs[:] = [d for d in dirs if d not in (".git", "node_modules")]
                    for f in files:
                        if f.startswith(".provision-"):
                            found.append(os.path.relpath(os.path.join(dirpath, f), self.root))
        return found


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def rm(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


def make_db(path, what):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES (?)", (what,))
    conn.commit()
    conn.close()


def restore(template, root):
    if os.path.lexists(root):
        shutil.rmtree(root)
    subprocess.run(["cp", "-a", template, root], check=True)


# ----------------------------------------------------------------------------
# The harness


class Harness:
    def __init__(self, args):
        self.args = args
        self.binary = os.path.realpath(args.binary)
        self.seed = args.seed
        self.quick = args.quick
        self.timeout = args.timeout
        # tmpfs where there is one: restoring a world before each fault is
        # then 20x faster than on a virtual disk (fsync faults are injected
        # by strace either way).
        shm = "/dev/shm"
        roomy = lambda d: os.statvfs(d).f_bavail * os.statvfs(d).f_frsize > 512 << 20
        parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) and roomy(shm) else None
        self.work = args.work or tempfile.mkdtemp(prefix="provision-chaos-", dir=parent)
        os.makedirs(self.work, exist_ok=True)
        home = os.path.join(self.work, "home")
        tmp = os.path.join(self.work, "tmp")
        os.makedirs(home, exist_ok=True)
        os.makedirs(tmp, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GIT_", "PROVISION_", "PG", "CARGO_", "RUST"))
               and k not in ("DATABASE_URL", "XDG_CONFIG_HOME", "NO_COLOR")}
        env.update(HOME=home, TMPDIR=tmp, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
                   GIT_AUTHOR_NAME="Chaos", GIT_AUTHOR_EMAIL="chaos@example.com",
                   GIT_COMMITTER_NAME="Chaos", GIT_COMMITTER_EMAIL="chaos@example.com",
                   NO_COLOR="1", LC_ALL="C", PROVISION_TRUST="1")
        self.env = env
        self.tally = Tally()
        # A victim beside every world, in the harness's own folder.
        write(os.path.join(self.work, "beside.txt"), "beside every world\n")

    def world(self, name):
        return World(self, os.path.join(self.work, name))

    def judge(self, kind, res, what, repro, cls_prefix="", ok=(0,)):
        """A run must end in exit 0 or a clear `error:` line: never a panic or a hang."""
        if res.hung:
            self.tally.add(kind, f"{kind}/{cls_prefix}hang",
                           f"{what}: no exit after {self.timeout}s ({' '.join(res.argv[-3:])})", repro)
            return False
        if res.panicked():
            self.tally.add(kind, f"{kind}/{cls_prefix}panic", f"{what}: panicked: {res.brief()}", repro)
            return False
        if res.rc not in ok and res.rc is not None and res.error_line() is None:
            tail = " | ".join(res.err.strip().splitlines()[-2:])[:300]
            self.tally.add(kind, f"{kind}/{cls_prefix}unclear-error",
                           f"{what}: exit {res.rc} without an `error:` line: {tail!r}", repro)
            return False
        return True


# ----------------------------------------------------------------------------
# kill -9


class Agent:
    def __init__(self, index, seed):
        self.i = index
        self.rng = random.Random(seed * 1000 + index)
        self.cur = None
        self.n = 0
        self.log = []

    def fresh(self):
        self.n += 1
        return f"k{self.i}-{self.n}"


def kill_mode(h, rounds, agents, kind="kill", w=None):
    """`kind` "kill" on a SQLite world; "pgkill" passes a PgWorld (see the
    PostgreSQL part below), whose agents also run `db reset`, whose
    background `db refill` processes are killed too, and whose server is
    checked after each round and at the end."""
    pg = kind == "pgkill"
    w = w or h.world("kill")
    say(f"{kind}: building the world in {w.root}")
    w.build()
    w.precious()
    # Timings uncontended, as a first guess of where a kill can land.
    est = {}
    t = time.monotonic(); w.must(["new", "calib"]); est["new"] = time.monotonic() - t
    rm(os.path.join(w.wt("calib"), ".npmrc")); w.drop_db("calib")
    t = time.monotonic(); w.must(["apply"], cwd=w.wt("calib")); est["apply"] = time.monotonic() - t
    if pg:
        t = time.monotonic(); w.must(["db", "reset"], cwd=w.wt("calib")); est["db reset"] = time.monotonic() - t
    t = time.monotonic(); w.must(["gc"]); est["gc"] = time.monotonic() - t
    t = time.monotonic(); w.must(["remove", "calib"]); est["remove"] = time.monotonic() - t
    # Contended by 8 agents on this machine's cores.
    factor = max(1.0, agents / max(1, os.cpu_count() or 1))
    est = {k: v * factor * 1.5 for k, v in est.items()}
    w.baseline()
    say(f"{kind}: first guesses of durations under load: " + ", ".join(f"{k} {v:.2f}s" for k, v in est.items()))
    est_lock = threading.Lock()
    crew = [Agent(i, h.seed) for i in range(agents)]

    def step(a, rnd):
        rng = a.rng
        if a.cur is None:
            op, name = "new", a.fresh()
        elif pg:
            op, name = rng.choices(["apply", "db reset", "remove", "gc"], weights=[3, 2, 3, 2])[0], a.cur
        else:
            op, name = rng.choices(["apply", "remove", "gc"], weights=[4, 3, 2])[0], a.cur
        wt = w.wt(name)
        perturbed = []
        if op == "apply":
            for what in rng.sample(["database", "lock", ".npmrc", ".env.local", "node_modules"], rng.randint(1, 3)):
                perturbed.append(what)
                if what == "database":
                    w.drop_db(name)
                else:
                    rm(os.path.join(wt, "provision.lock" if what == "lock" else what))
        args = {"new": ["new", name], "apply": ["apply"], "db reset": ["db", "reset"],
                "remove": ["remove", name], "gc": ["gc"]}[op]
        cwd = wt if op in ("apply", "db reset") else w.app
        kill = rng.random() < 0.85
        with est_lock:
            delay = rng.uniform(0, est[op]) if kill else None
        res = w.prov(args, cwd=cwd, kill_after=delay)
        if not res.killed:
            with est_lock:
                est[op] = 0.7 * est[op] + 0.3 * res.secs * 1.1
        label = f"`provision {' '.join(args)}`" + (f" (after deleting {', '.join(perturbed)})" if perturbed else "")
        repro = (f"--seed {h.seed} --kinds {kind}: round {rnd}, agent {a.i}: {label}"
                 + (f" killed (SIGKILL to its process group) {delay:.3f}s in" if res.killed else " not killed")
                 + f"; agent's earlier steps: {'; '.join(a.log[-4:]) or 'none'}")
        a.log.append(f"r{rnd} {op} {name}{' killed' if res.killed else ''}")
        if res.killed:
            h.tally.count(kind, "kills")
            h.tally.count(kind, f"kills during {op}")
        else:
            h.tally.count(kind, "runs not killed")
            h.judge(kind, res, label, repro)
        recovered = []
        expect = None  # "A", "B" or "AB"
        branch_rule = True
        if op == "new":
            if not res.killed and res.rc == 0:
                expect = "A"
            else:
                choice = rng.choice(["apply", "remove"])
                if choice == "apply" and os.path.exists(os.path.join(wt, ".git")):
                    r = w.recover(["apply"], cwd=wt)
                    recovered.append(("apply", r))
                    expect = "A" if r.rc == 0 else None
                    if r.rc != 0:
                        r2 = w.recover(["gc"])
                        recovered.append(("gc", r2))
                        expect = "AB"
                else:
                    r = w.recover(["remove", name])
                    recovered.append(("remove " + name, r))
                    if r.rc != 0:
                        r2 = w.recover(["gc"])
                        recovered.append(("gc", r2))
                    expect = "B"
        elif op in ("apply", "db reset"):
            if res.killed or res.rc != 0:
                r = w.recover(["apply"], cwd=wt)
                recovered.append(("apply", r))
            expect = "A"
        elif op == "remove":
            if res.killed or res.rc != 0:
                r = w.recover(["remove", name])
                recovered.append(("remove " + name, r))
                if r.rc != 0:
                    recovered.append(("gc", w.recover(["gc"])))
            expect = "B"
        else:
            if res.killed or res.rc != 0:
                recovered.append(("gc", w.recover(["gc"])))
            expect = "A"
        for what, r in recovered:
            h.tally.count(kind, "recoveries run")
            h.judge(kind, r, f"recovery `provision {what}`", repro, "recovery-")
        rec_text = recovery_text(recovered, name) or f"no recovery (it exited {res.rc})"
        s = w.state(name)
        ok_a, ok_b = w.present(s), w.gone(s)
        converged = (expect == "A" and ok_a) or (expect == "B" and ok_b) or (expect == "AB" and (ok_a or ok_b))
        applied = any(what == "apply" and r.rc == 0 for what, r in recovered)
        if applied and s["locked"] == ADDING:
            # The root cause of what may follow (any gc takes the sandbox
            # for a `new` cut short): reported once, as such.
            h.tally.add(kind, f"{kind}/apply-left-git-lock",
                        f"sandbox {name}: after {rec_text}, git still has it locked with {ADDING!r}, "
                        f"which `gc` takes for a `new` cut short: {w.describe(s)}", repro)
        if converged:
            h.tally.count(kind, "steps converged")
        elif applied and s["locked"] == ADDING:
            pass
        elif expect in ("B", "AB") and w.gone(s, branch=False):
            h.tally.add(kind, f"{kind}/branch-left",
                        f"sandbox {name}: after {rec_text}, everything is gone but branch {name}", repro)
        else:
            want = {"A": "a sandbox that verifies clean", "B": "nothing left",
                    "AB": "a clean sandbox or nothing"}[expect or "AB"]
            temp = re.search(r"\?\? (\S*\.provision-\S+)", rec_text)
            want_ = "A" if expect == "A" else "B"
            cls = (f"{kind}/temp-file-blocks-remove" if temp
                   else f"{kind}/not-converged/{op}: {w.signature(s, want_)}")
            h.tally.add(kind, cls, f"sandbox {name}: after {rec_text}, wanted {want}: {w.describe(s)}", repro)
        if ok_a and converged:
            # The user starts working in it; a gc (this agent's, or any
            # other's meanwhile) must leave it and the work alone.
            if not w.try_add_work(name):
                h.tally.add(kind, f"{kind}/live-sandbox-removed",
                            f"sandbox {name}: after {rec_text} it verified clean, and then vanished before the "
                            f"user could edit in it (another agent's gc?): {w.describe(w.state(name))}"
                            + (f"; it was locked with {ADDING!r}" if s["locked"] == ADDING else ""), repro)
            else:
                g = w.prov(["gc"])
                h.judge(kind, g, "`provision gc` with the user's work in a live sandbox", repro)
                s2 = w.state(name)
                lost = w.work_lost(name)
                if lost or not w.present(s2):
                    h.tally.add(kind, f"{kind}/gc-removed-worktree-with-work" if not s2["dir"]
                                else f"{kind}/gc-broke-live-sandbox",
                                f"sandbox {name}: after {rec_text}, the user edited files in it and "
                                f"`provision gc` ran (exit {g.rc}; it said: "
                                f"{recovery_text([('gc', g)], name)}): {w.describe(s2)}"
                                + (f"; lost: {', '.join(lost)}" if lost else ""), repro)
                if s2["dir"]:
                    w.drop_work(name)
                else:
                    w.work.pop(wt, None)
                    w.status0.pop(wt, None)
            if w.present(w.state(name)) and w.state(name, verify=False)["locked"] != ADDING:
                a.cur = name
                return
        # Anything else: the agent gives up on this sandbox, so that one
        # finding does not cascade into the next rounds.
        a.cur = None
        if not w.gone(w.state(name, verify=False)):
            w.git(["worktree", "unlock", wt], check=False)
            w.prov(["remove", "--force", name])
            w.prov(["gc"])
            w.git(["branch", "-D", name], check=False)

    def agent(a, rnd):
        step(a, rnd)
        if pg:
            w.kill_a_refill(a, rnd)

    t0 = time.monotonic()
    for rnd in range(rounds):
        if pg:
            w.between_rounds(rnd, rounds)
        threads = [threading.Thread(target=guarded, args=(h, kind, agent, a, rnd)) for a in crew]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for cls, what in w.invariants():
            h.tally.add(kind, f"{kind}/{cls}", what,
                        f"--seed {h.seed} --kinds {kind}: after round {rnd} (agents' steps: "
                        + "; ".join(a.log[-1] for a in crew if a.log) + ")")
        c = h.tally.counts[kind]
        say(f"{kind}: round {rnd + 1}/{rounds}: {c['kills']} kills so far, "
            f"{len(h.tally.violations)} violations ({time.monotonic() - t0:.0f}s)")
    # Last: a gc, and nothing of provision's temp files may remain.
    g = w.prov(["gc"])
    h.judge(kind, g, "final `provision gc`", f"--seed {h.seed} --kinds {kind}: the end")
    left = w.residue()
    if left:
        h.tally.add(kind, f"{kind}/temp-files-left",
                    f"after {rounds} rounds and a final gc, provision's temp files remain: {', '.join(left[:8])}"
                    + (f" and {len(left) - 8} more" if len(left) > 8 else ""),
                    f"--seed {h.seed} --kinds {kind} --rounds {rounds}")
    if pg:
        w.finish(crew)
    h.tally.seconds[kind] = time.monotonic() - t0


def recovery_text(recovered, name=None):
    """`provision X` (exit N: its error; what it said about `name`), ..."""
    parts = []
    for what, r in recovered:
        extra = []
        if r.rc != 0:
            extra.append(r.brief()[:160])
        if name and what.startswith("gc"):
            said = [l.strip() for l in r.out.splitlines() + r.err.splitlines()
                    if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", l)]
            if said:
                extra.append("it said: " + " / ".join(said[:2])[:200])
        parts.append(f"`provision {what}` (exit {r.rc}{': ' + '; '.join(extra) if extra else ''})")
    return ", then ".join(parts)


def guarded(h, kind, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # the harness's own failure is a finding to look at, not a crash
        import traceback
        h.tally.add(kind, f"{kind}/harness-error", f"{type(e).__name__}: {e}",
                    traceback.format_exc().strip().splitlines()[-3:])


# ----------------------------------------------------------------------------
# PostgreSQL: the pgkill kind
#
# The kill kind's agents and recovery (kill_mode), on a world whose recipe
# is `kind = "postgres"` against a private server on loopback. Besides the
# kill kind's checks, the server itself is read (psql -At) after each round
# and at the end:
#   1. no database named as a sandbox's, a store entry, a spare or one set
#      aside is unmarked (shobj_description NULL), and a sandbox's carries
#      this clone's mark for its own worktree;
#   2. once every sandbox is removed and gc has run twice, nothing of
#      provision's is left but the newest store entries gc keeps and one
#      spare each: no provision_new_*, no *_aside_*, no sandbox database,
#      no record under .git/provision/creating/ or aside/;
#   3. the decoys (the user's unmarked database named as a sandbox's would
#      be, another clone's sandbox, spare, store entry, set-aside and
#      half-made databases) are never dropped, renamed or re-marked.
# Besides each agent's run (killed with its process group), the `db refill`
# that `new` and `db reset` start in a process group of its own is SIGKILLed
# at random, and every few rounds the main branch gains a migration, so that
# the store grows entries gc collects while refills copy them.

PG_SYSTEM = ("postgres", "template0", "template1")
OTHER_CLONE = "0123456789abcdef" * 2  # 32 hex: another clone's id
MARK = "provision:v1"


def pg_bindir():
    """Where initdb and pg_ctl are: PATH, pg_config --bindir, Debian's folder."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    try:
        d = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if d and os.path.isfile(os.path.join(d, "initdb")):
            return d
    except OSError:
        pass
    versions = sorted(glob_dirs("/usr/lib/postgresql"))
    for v in reversed(versions):
        if os.path.isfile(os.path.join(v, "bin", "initdb")):
            return os.path.join(v, "bin")
    sys.exit("chaos: pgkill needs PostgreSQL's initdb and pg_ctl (`sh tests/run.sh` installs them)")


def glob_dirs(top):
    try:
        return [os.path.join(top, d) for d in os.listdir(top)]
    except OSError:
        return []


def qi(name):
    return '"' + name.replace('"', '""') + '"'


def ql(text):
    return "'" + text.replace("'", "''") + "'"


class PgServer:
    """A private server, as bench/server.sh and tests/it/pg_server.rs start
    one: initdb (trust) and pg_ctl on a free loopback port, its socket in
    its own folder, as the postgres user when run as root. `stop` ends it
    and deletes the folder."""

    def __init__(self, parent):
        self.bindir = pg_bindir()
        self.root = os.geteuid() == 0
        # Beside the harness's work dir, which is root's alone (0700).
        self.dir = tempfile.mkdtemp(prefix="provision-chaos-pg-", dir=parent)
        self.data = os.path.join(self.dir, "data")
        self.started = False
        if self.root:
            subprocess.run(["chown", "-R", "postgres:", self.dir], check=True)
        self.check([os.path.join(self.bindir, "initdb"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                    "--no-sync", "-D", self.data])
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        # Every CREATE, ALTER, COMMENT and DROP is logged, with its session
        # and client: what a violation names is looked up there.
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c log_statement=ddl -c log_line_prefix=%m[%p]%a:")
        self.check([os.path.join(self.bindir, "pg_ctl"), "-w", "-t", "60", "-o", opts,
                    "-l", os.path.join(self.dir, "server.log"), "-D", self.data, "start"])
        self.started = True

    def as_pg(self, argv):
        return ["runuser", "-u", "postgres", "--"] + argv if self.root else argv

    def check(self, argv):
        # A session of its own: a Ctrl-C aimed at the harness leaves the
        # server to `stop`.
        r = subprocess.run(self.as_pg(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           start_new_session=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stdout}{r.stderr}")

    def url(self, db="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres", check=True):
        """Runs `sql`; its output lines (psql -At)."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                           env={"PATH": os.environ.get("PATH", ""), "PGCONNECT_TIMEOUT": "10", "LC_ALL": "C"})
        if r.returncode != 0:
            if check:
                raise RuntimeError(f"psql {sql!r} on {db}: {r.stderr.strip()}")
            return None
        return r.stdout.splitlines()

    def rows(self, query, db="postgres", check=True):
        """The rows of a query as dicts (NULL as None), or None when it
        fails and not `check`."""
        out = self.psql(f"SELECT coalesce(json_agg(to_json(q)), '[]') FROM ({query}) q", db, check)
        return None if out is None else json.loads("".join(out))

    def databases(self):
        """{oid: (name, mark or None)} of every database but the system's."""
        rows = self.rows("SELECT oid::bigint AS oid, datname::text AS name, "
                         "shobj_description(oid, 'pg_database') AS mark FROM pg_database")
        return {r["oid"]: (r["name"], r["mark"]) for r in rows if r["name"] not in PG_SYSTEM}

    def history(self, name, limit=12):
        """The server log's lines that name database `name`."""
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                lines = [l.strip() for l in f if name in l]
        except OSError:
            return []
        return lines[-limit:]

    def stop(self):
        if self.started:
            try:
                self.check([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop"])
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                say(f"pgkill: stopping the server: {e}")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


class PgWorld(World):
    """The kill kind's world with `[database] kind = "postgres"`."""
    ID_COLUMN = "serial PRIMARY KEY"

    def __init__(self, h, root, server):
        super().__init__(h, root)
        self.pg = server
        self.decoys = {}  # oid -> (name, mark)
        self.decoy_records = set()
        self.migrations = 20

    # -- building --

    def build(self):
        super().build()
        write(os.path.join(self.app, "provision.toml"),
              f'[database]\nkind = "postgres"\nurl = "{self.pg.url()}"\n\n'
              f'[env.vars]\nDATABASE_URL = "postgres://postgres@127.0.0.1:{self.pg.port}/{{db}}"\n')
        self.git(["add", "provision.toml"])
        self.git(["commit", "-q", "-m", "postgres recipe"])

    def precious(self):
        """Two sandboxes holding the user's work (keep-b locked), rows the
        user added to their databases, and the decoys."""
        for name in PRECIOUS:
            self.must(["new", name])
            self.add_work(name, precious=True)
            self.pg.psql(f"CREATE TABLE user_notes (t text); INSERT INTO user_notes VALUES ({ql(name + ' rows')})",
                         db=self.db_name(name))
        self.git(["worktree", "lock", "--reason", "the user's lock", self.wt("keep-b")])
        self.make_decoys()

    @property
    def clone_id(self):
        with open(os.path.join(self.git_dir, "provision", "clone-id")) as f:
            return f.read().strip()

    def db_name(self, name):
        return f"{REPO}_{slug(name)}_{self.clone_id[:8]}"

    def make_decoys(self):
        c8 = self.clone_id[:8]
        other = lambda wt: f"{MARK} clone={OTHER_CLONE} worktree={wt}"
        half = "provision_new_" + "ab" * 8
        decoys = [
            # The user's own, named as sandbox `squatter`'s would be.
            (f"{REPO}_squatter_{c8}", None),
            # Another clone's sandbox, set-aside database, spare half taken
            # and store entry, on the same server.
            (f"{REPO}_theirs_{c8}", other("worktree-x")),
            (f"{REPO}_theirs_{c8}_aside_1700000000000", other("worktree-x")),
            ("provision_spare_" + "c" * 32 + "_" + "d" * 8, other("worktree-x")),
            ("provision_store_" + "e" * 32, other("store:v1")),
            # Another clone's half-made database, its record copied along
            # with .git (unlocked), and one with no record at all.
            (half, None),
            ("provision_new_" + "cd" * 8, None),
        ]
        for name, mark in decoys:
            self.pg.psql(f"CREATE DATABASE {qi(name)}")
            if mark:
                self.pg.psql(f"COMMENT ON DATABASE {qi(name)} IS {ql(mark)}")
        creating = os.path.join(self.git_dir, "provision", "creating")
        write(os.path.join(creating, half), OTHER_CLONE)
        self.decoy_records.add(half)
        names = {n for n, _ in decoys}
        self.decoys = {o: v for o, v in self.pg.databases().items() if v[0] in names}
        assert len(self.decoys) == len(decoys), self.decoys

    def recover(self, args, cwd=None):
        """As World's; and a person whose step could not reach the server
        (provision gives up connecting after 3 s: a loaded 2-core machine
        copying databases can be that slow) runs it once more."""
        r = super().recover(args, cwd)
        if r.rc != 0 and "cannot connect to PostgreSQL" in r.err:
            self.h.tally.count("recovery", "steps run again after `cannot connect to PostgreSQL`")
            time.sleep(1)
            r = super().recover(args, cwd)
        return r

    # -- the database hooks --

    def db_present(self, name):
        db = self.db_name(name)
        rows = self.pg.rows(f"SELECT 1 AS one FROM pg_database WHERE datname = {ql(db)}")
        return [f"postgres:{db}"] if rows else []

    def drop_db(self, name):
        self.pg.psql(f"DROP DATABASE IF EXISTS {qi(self.db_name(name))} WITH (FORCE)")

    def db_entry(self, name):
        db = self.db_name(name)
        rows = self.pg.rows(f"SELECT oid::bigint AS oid, shobj_description(oid, 'pg_database') AS mark "
                            f"FROM pg_database WHERE datname = {ql(db)}")
        if not rows:
            return None
        notes = self.pg.rows("SELECT string_agg(t, ',') AS t FROM user_notes", db=db, check=False)
        return (rows[0]["oid"], rows[0]["mark"], notes[0]["t"] if notes else "(user_notes unreadable)")

    def db_where(self, name):
        return f"postgres:{self.db_name(name)}"

    # -- the server's invariants --

    def classify(self, name):
        c8 = re.escape(self.clone_id[:8])
        if re.fullmatch(r"provision_new_[0-9a-f]{16}", name):
            return "half-made"
        if re.fullmatch(r"provision_store_[0-9a-f]{32}", name):
            return "store"
        if re.fullmatch(r"provision_spare_[0-9a-f]{32}_[0-9a-f]{8}", name):
            return "spare"
        if re.fullmatch(rf"{REPO}_[a-z0-9_]+_{c8}_aside_\d+", name):
            return "aside"
        if re.fullmatch(rf"{REPO}_[a-z0-9_]+_{c8}", name):
            return "sandbox"
        return "other"

    def pg_problems(self):
        """(class, what) for each database that breaks invariant 1 or 3, and
        the databases as they are, classified (oid -> (name, mark, class))."""
        bad = []
        dbs = self.pg.databases()
        for oid, (name, mark) in self.decoys.items():
            now = dbs.get(oid)
            if now is None:
                bad.append(("pg-decoy-dropped", f"the user's database {name} (mark {mark!r}) was dropped"))
            elif now[0] != name:
                bad.append(("pg-decoy-renamed", f"the user's database {name} was renamed to {now[0]}"))
            elif now[1] != mark:
                bad.append(("pg-decoy-remarked", f"the user's database {name}: its comment {mark!r} is now {now[1]!r}"))
        cid = self.clone_id
        ours = f"{MARK} clone={cid} worktree="
        store_mark = ours + "store:v1"
        seen = {}
        for oid, (name, mark) in sorted(dbs.items()):
            if oid in self.decoys:
                continue
            cls = self.classify(name)
            seen[oid] = (name, mark, cls)
            if cls in ("sandbox", "store", "spare", "aside") and mark is None:
                bad.append((f"pg-unmarked-{cls}", f"database {name} ({cls}) carries no mark"))
            elif cls == "store" and mark != store_mark:
                bad.append(("pg-store-entry-mark", f"store entry {name} is marked {mark!r}, not as the store's"))
            elif cls in ("sandbox", "aside") and not mark.startswith(ours):
                bad.append((f"pg-{cls}-mark-foreign", f"database {name} is marked {mark!r}, not as this clone's"))
            elif cls == "sandbox":
                wt_id = mark[len(ours):]
                middle = name[len(REPO) + 1:-(len(cid[:8]) + 1)]
                if not (wt_id.startswith("worktree-") and slug(wt_id[len("worktree-"):]).startswith(middle)):
                    bad.append(("pg-sandbox-marked-as-another-worktree",
                                f"database {name} is marked as worktree {wt_id!r}'s"))
        return bad, seen

    def invariants(self, precious=True):
        bad = super().invariants(precious)
        problems, _ = self.pg_problems()
        return bad + problems

    # -- what the kill kind calls between and after rounds --

    def between_rounds(self, rnd, rounds):
        """Every few rounds the main branch gains a migration (the harness's
        own commit, taken into the main checkout's baseline)."""
        every = max(2, rounds // 6)
        if rnd == 0 or rnd % every:
            return
        self.migrations += 1
        i = self.migrations
        write(os.path.join(self.app, f"migrations/{i:04}_table_{i}.sql"),
              f"CREATE TABLE t{i} (id {self.ID_COLUMN}, name TEXT NOT NULL);\n"
              f"INSERT INTO t{i} (name) VALUES ('a');\n")
        self.git(["add", f"migrations/{i:04}_table_{i}.sql"])
        self.git(["commit", "-q", "-m", f"migration {i}"])
        self.base_main = snapshot(self.app, lambda rel: rel == ".git" or rel.startswith(".git" + os.sep))
        self.base_git = self.main_git_bits()
        self.h.tally.count("pgkill", "migrations added to main between rounds")

    def refills(self):
        """The `provision db refill` processes of this world (each the leader
        of a process group of its own)."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if (argv and argv[0] == self.h.binary and "refill" in argv and "-C" in argv
                    and argv[argv.index("-C") + 1].startswith(self.root + os.sep)):
                out.append(int(pid))
        return out

    def kill_a_refill(self, a, rnd):
        """Now and then, SIGKILLs a running `db refill` at a random point."""
        rng = getattr(a, "refill_rng", None) or random.Random(self.h.seed * 7919 + a.i)
        a.refill_rng = rng
        if rng.random() >= 0.4:
            return
        time.sleep(rng.uniform(0, 0.3))
        pids = self.refills()
        if not pids:
            return
        pid = rng.choice(sorted(pids))
        try:
            os.killpg(pid, signal.SIGKILL)
            self.h.tally.count("pgkill", "db refill processes killed")
            a.log.append(f"r{rnd} killed a db refill")
        except (ProcessLookupError, PermissionError):
            pass

    def finish(self, crew):
        """Invariant 2: every sandbox removed, gc twice, and nothing of
        provision's left on the server but what gc keeps."""
        kind = "pgkill"
        repro = f"--seed {self.h.seed} --kinds pgkill --pg-rounds {self.h.args.pg_rounds}: the end"
        deadline = time.monotonic() + 120
        while self.refills() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.refills():
            self.h.tally.add(kind, "pgkill/refill-hang", f"`provision db refill` (pid {pid}) still runs "
                             "120 s after the last round", repro)
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.git(["worktree", "unlock", self.wt("keep-b")], check=False)
        for wt in self.worktree_list()[1:]:
            name = os.path.basename(wt["path"])[len("worktree-"):]
            r = self.recover(["remove", "--force", name])
            self.h.judge(kind, r, f"`provision remove --force {name}` at the end", repro)
            self.h.tally.count(kind, "sandboxes removed at the end")
        said = []
        for i in range(2):
            g = self.recover(["gc"])
            self.h.judge(kind, g, f"gc {i + 1} of 2 at the end", repro)
            said.append(f"gc {i + 1} (exit {g.rc}): " + " / ".join(
                l.strip() for l in (g.out + g.err).splitlines() if l.strip())[:600])
        problems, seen = self.pg_problems()
        for cls, what in problems:
            self.h.tally.add(kind, f"pgkill/{cls}", what + " (at the end)", repro)
        left = collections.defaultdict(list)
        for name, mark, cls in seen.values():
            left[cls].append(name)
        entries = left.pop("store", [])
        spares = left.pop("spare", [])
        leftover = []
        if len(entries) > 3:
            leftover.append(f"{len(entries)} store entries (gc keeps 3): {', '.join(sorted(entries))}")
        per = collections.Counter(n[len("provision_spare_"):-9] for n in spares)
        for hash_, n in sorted(per.items()):
            if "provision_store_" + hash_ not in entries:
                leftover.append(f"spare(s) of entry provision_store_{hash_}, which is gone")
            elif n > 1:
                leftover.append(f"{n} spares of provision_store_{hash_} (gc keeps one)")
        for cls, names in sorted(left.items()):
            leftover.append(f"{cls}: {', '.join(sorted(names))}")
            for n in sorted(names)[:3]:
                leftover.append(f"the server's log of {n}: " + " || ".join(self.pg.history(n)))
        if leftover:
            self.h.tally.add(kind, "pgkill/left-after-remove-and-gc",
                             "after removing every sandbox and two `gc`s the server still has: "
                             + "; ".join(leftover) + " | " + " | ".join(said), repro)
        for sub in ("creating", "aside"):
            d = os.path.join(self.git_dir, "provision", sub)
            names = sorted(set(os.listdir(d)) - self.decoy_records) if os.path.isdir(d) else []
            if names:
                self.h.tally.add(kind, f"pgkill/records-left-{sub}",
                                 f"after removing every sandbox and two `gc`s, .git/provision/{sub}/ "
                                 f"still holds {', '.join(names)}", repro)
        self.h.tally.count(kind, "store entries kept at the end", len(entries))
        self.h.tally.count(kind, "spares kept at the end", len(spares))


def pgkill_mode(h, rounds, agents):
    server = PgServer(os.path.dirname(h.work.rstrip(os.sep)))
    say(f"pgkill: PostgreSQL on 127.0.0.1:{server.port} ({server.dir})")
    try:
        kill_mode(h, rounds, agents, "pgkill", PgWorld(h, os.path.join(h.work, "pgkill"), server))
    finally:
        server.stop()


# The pgstep kind: provision killed before its K-th message to the server
# (`strace -e inject=sendto:signal=KILL:when=K`: statements 1..K-1 done,
# the K-th never sent) or as it reads the K-th answer (`recvfrom`: a
# statement sent whose end it never sees; the server finishes a CREATE
# DATABASE whose client is gone), K = 1, 2, ... until the command no
# longer gets that far: every gap between two statements of each PostgreSQL
# step, reproducibly. Each step starts from a set-up made for it on one
# PgWorld (never restored: the server's state cannot be copied with the
# files), and after each kill the documented recovery runs, then gc (again
# if the first left a half-made database: the server still copied), and
# the checks: the sandbox whole or gone, the kill kind's invariants, the
# server's (1 and 3), and nothing half made, set aside or orphaned left.

PG_STEPS = ["new-spare", "new-copy", "new-migrate", "reset", "refill", "gc", "remove"]
PG_GROUPS = [("send", "sendto"), ("recv", "recvfrom")]


class PgStepWorld(PgWorld):
    def __init__(self, h, root, server):
        super().__init__(h, root, server)
        self.fresh = 0

    def name(self):
        self.fresh += 1
        return f"s{self.fresh}"

    def settle(self, secs=60):
        """Waits for the background `db refill`s to end."""
        deadline = time.monotonic() + secs
        while self.refills() and time.monotonic() < deadline:
            time.sleep(0.05)

    def ours(self):
        """[(name, mark, class)] of this clone's databases, decoys aside."""
        _, seen = self.pg_problems()
        return list(seen.values())

    def newest_entry(self):
        entries = [(o, n) for o, (n, m) in self.pg.databases().items()
                   if o not in self.decoys and self.classify(n) == "store"]
        return max(entries)[1] if entries else None

    def drop_spares(self):
        for name, _, cls in self.ours():
            if cls == "spare":
                self.pg.psql(f"DROP DATABASE IF EXISTS {qi(name)} WITH (FORCE)")

    def add_main_migration(self):
        self.between_rounds(1, 1)

    def setup(self, step):
        """(argv, cwd, sandbox name or None) for one run of `step`."""
        self.settle()
        if step.startswith("new"):
            name = self.name()
            if step == "new-copy":
                self.drop_spares()
            elif step == "new-migrate":
                self.add_main_migration()
            elif step == "new-spare" and not any(c == "spare" for _, _, c in self.ours()):
                entry = self.newest_entry()
                if entry:
                    self.must(["db", "refill", entry])
            return ["new", name], self.app, name
        if step == "refill":
            self.drop_spares()
            return ["db", "refill", self.newest_entry() or "provision_store_none"], self.app, None
        name = self.name()
        self.must(["new", name])
        self.settle()
        if step == "reset":
            return ["db", "reset"], self.wt(name), name
        if step == "remove":
            return ["remove", name], self.app, name
        # gc: a database set aside, and the worktree gone behind provision's back.
        self.must(["db", "reset"], cwd=self.wt(name))
        self.settle()
        self.git(["worktree", "remove", "--force", self.wt(name)])
        return ["gc"], self.app, name

    def leftovers(self, live):
        """What of provision's is on the server that nothing should hold
        once recovery and gc ran: half-made, set-aside, half-taken spares,
        and databases of sandboxes that are gone."""
        cid = self.clone_id
        store_mark = f"{MARK} clone={cid} worktree=store:v1"
        keep = {self.db_name(n) for n in live}
        out = []
        for name, mark, cls in self.ours():
            if cls in ("half-made", "aside", "other"):
                out.append(f"{cls} {name}")
            elif cls == "spare" and mark != store_mark:
                out.append(f"half-taken spare {name} (marked {mark!r})")
            elif cls == "sandbox" and name not in keep:
                out.append(f"database {name} of no live sandbox (marked {mark!r})")
        d = os.path.join(self.git_dir, "provision", "creating")
        for rec in sorted(set(os.listdir(d)) - self.decoy_records) if os.path.isdir(d) else []:
            out.append(f"record .git/provision/creating/{rec}")
        d = os.path.join(self.git_dir, "provision", "aside")
        for rec in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            out.append(f"record .git/provision/aside/{rec}")
        return out


def pgstep_mode(h, plan_filter=None):
    kind = "pgstep"
    if shutil.which("strace") is None:
        h.tally.add(kind, "pgstep/no-strace", "strace is not installed: the pgstep kind did not run",
                    "install strace (tests/run.sh does)")
        return
    server = PgServer(os.path.dirname(h.work.rstrip(os.sep)))
    say(f"pgstep: PostgreSQL on 127.0.0.1:{server.port} ({server.dir})")
    try:
        _pgstep(h, kind, server, plan_filter)
    finally:
        server.stop()


def _pgstep(h, kind, server, plan_filter):
    t0 = time.monotonic()
    w = PgStepWorld(h, os.path.join(h.work, "pgstep"), server)
    w.build()
    w.precious()
    w.baseline()
    trace = os.path.join(h.work, "pgstep.strace")
    rng = random.Random(h.seed)
    everything = ",".join(g for _, g in PG_GROUPS)
    reach = {}
    for step in PG_STEPS:
        if plan_filter and not any(plan_filter(f"{step}/{label}/{k}")
                                   for label, _ in PG_GROUPS for k in range(1, 500)):
            continue
        args, cwd, name = w.setup(step)
        r = run(strace_argv(w, trace, everything, None, 0, args), cwd, h.env, h.timeout * 3)
        if r.rc != 0:
            h.tally.add(kind, "pgstep/baseline-failed",
                        f"`provision {' '.join(args)}` fails even without a fault: {r.brief()}", step)
        for label, group in PG_GROUPS:
            reach[(step, label)] = count_calls(trace, group)
        pgstep_cleanup(w, name)
    say("pgstep: calls reached (most by one process): " + ", ".join(
        f"{s}/{l} {n}" for (s, l), n in sorted(reach.items()) if n))
    plan = [(step, label, group, k) for step in PG_STEPS for label, group in PG_GROUPS
            for k in range(1, reach.get((step, label), 0) + 1)]
    if plan_filter:
        plan = [p for p in plan if plan_filter(f"{p[0]}/{p[1]}/{p[3]}")]
    if h.quick:
        rng.shuffle(plan)
        plan = sorted(plan[:h.args.quick_pg_faults], key=lambda p: (PG_STEPS.index(p[0]), p[1], p[3]))
    say(f"pgstep: {len(plan)} kills planned")
    unreached = set()
    for i, (step, label, group, k) in enumerate(plan):
        if (step, label) in unreached:
            continue
        args, cwd, name = w.setup(step)
        res = run(strace_argv(w, trace, group, "KILL", k, args), cwd, h.env, h.timeout * 3)
        hits = injected(trace)
        repro = (f"`--only pgstep:{step}/{label}/{k}`: `strace -f -e inject={group}:signal=KILL:when={k} "
                 f"provision {' '.join(args)}` after the set-up of step {step}")
        if not hits:
            h.tally.count(kind, "runs that did not reach the K-th call")
            if k > reach[(step, label)]:
                unreached.add((step, label))
            if not h.judge(kind, res, f"`provision {' '.join(args)}` (not killed)", repro):
                pgstep_cleanup(w, name)
                continue
        else:
            h.tally.count(kind, "kills at a statement")
            h.tally.count(kind, f"kills in {step}")
            repro += f"; killed at: {hits[0][:140]}"
        pgstep_recover(h, w, kind, step, k, name, res, bool(hits), repro)
        pgstep_cleanup(w, name)
        if (i + 1) % 25 == 0:
            c = h.tally.counts[kind]
            say(f"pgstep: {i + 1}/{len(plan)} runs, {c['kills at a statement']} kills, "
                f"{len(h.tally.violations)} violations ({time.monotonic() - t0:.0f}s)")
    h.tally.seconds[kind] = time.monotonic() - t0


def pgstep_recover(h, w, kind, step, k, name, res, killed, repro):
    recovered = []
    expect = None
    if step.startswith("new"):
        if k % 2 and os.path.exists(os.path.join(w.wt(name), ".git")):
            recovered.append(("apply", w.recover(["apply"], cwd=w.wt(name))))
            expect = "A" if recovered[-1][1].rc == 0 else "AB"
        else:
            recovered.append((f"remove {name}", w.recover(["remove", name])))
            expect = "B"
    elif step == "reset":
        recovered.append(("apply", w.recover(["apply"], cwd=w.wt(name))))
        expect = "A"
    elif step == "remove":
        recovered.append((f"remove {name}", w.recover(["remove", name])))
        expect = "B"
    elif step == "gc":
        expect = "B"
    # The documented last step: gc; again once refills ended if the first
    # left something half made (the server was still copying for it).
    recovered.append(("gc", w.recover(["gc"])))
    w.settle()
    live = list(PRECIOUS) + ([name] if expect == "A" else [])
    if w.leftovers(live):
        h.tally.count(kind, "recoveries that needed a second gc")
        recovered.append(("gc", w.recover(["gc"])))
    for what, r in recovered:
        h.tally.count(kind, "recoveries run")
        h.judge(kind, r, f"recovery `provision {what}`", repro, "recovery-")
    text = recovery_text(recovered, name)
    if name is not None:
        s = w.state(name)
        ok_a, ok_b = w.present(s), w.gone(s, branch=False)
        if (expect == "A" and ok_a) or (expect == "B" and ok_b) or (expect == "AB" and (ok_a or ok_b)):
            h.tally.count(kind, "steps converged")
        else:
            want = {"A": "a sandbox that verifies clean", "B": "nothing left",
                    "AB": "a clean sandbox or nothing"}[expect]
            h.tally.add(kind, f"pgstep/not-converged/{step}: {w.signature(s, 'A' if expect == 'A' else 'B', False)}",
                        f"sandbox {name}: after {text}, wanted {want}: {w.describe(s, branch=False)}", repro)
        if ok_a:
            live = list(PRECIOUS) + [name]
    for cls, what in w.invariants():
        h.tally.add(kind, f"pgstep/{cls}", what, repro)
    left = w.leftovers(live)
    if left:
        h.tally.add(kind, f"pgstep/left-after-recovery/{step}",
                    f"after {text}: {'; '.join(left)}", repro)


def pgstep_cleanup(w, name):
    """Back to the precious sandboxes alone (and the store)."""
    if name is None:
        return
    w.settle()
    if not w.gone(w.state(name, verify=False), branch=False):
        w.prov(["remove", "--force", name])
    w.git(["branch", "-D", name], check=False)
    if w.leftovers(PRECIOUS):
        w.prov(["gc"])


# ----------------------------------------------------------------------------
# Syscall faults

SYSCALLS = [
    ("write", "write"),
    ("pwrite64", "pwrite64"),
    ("openat", "openat"),
    ("rename", "rename,renameat,renameat2"),
    ("unlink", "unlink,unlinkat,rmdir"),
    ("mkdir", "mkdir,mkdirat"),
    ("fsync", "fsync,fdatasync"),
    ("symlink", "symlink,symlinkat"),
    ("link", "link,linkat"),
]
ERRNOS = ["EIO", "ENOSPC"]
# Besides failing a call, strace can SIGKILL the process at it: a kill at an
# exact point (inside an atomic write, between git's step and provision's),
# reproducible where a timed kill is not. Only the process making the K-th
# call dies (its children live on), as when provision alone is killed.
KILL_GROUPS = {"fsync", "rename", "mkdir", "symlink", "unlink", "link"}
SYS_COMMANDS = ["new", "apply", "remove", "gc"]


def syscall_world(h, name="sys"):
    """One world the faulted commands start from, restored before each:
    `sa` perturbed so that `apply` rebuilds most of it, `sr` clean for
    `remove`, `og` an orphan (its worktree removed with plain git) and `oc`
    a worktree a killed `new` left (locked with provision's reason)."""
    w = h.world(name)
    w.build()
    w.precious()
    for sandbox in ["sa", "sr", "og"]:
        w.must(["new", sandbox])
    w.git(["worktree", "remove", w.wt("og")])
    w.git(["worktree", "add", "-q", "--lock", "--reason", ADDING, "-b", "oc", w.wt("oc")])
    for suffix in ("", "-journal", "-wal"):
        rm(w.db_path("sa") + suffix)
    for rel in ["provision.lock", ".npmrc", ".env.local"]:
        rm(os.path.join(w.wt("sa"), rel))
    w.baseline()
    tpl = os.path.join(h.work, f"tpl-{name}")
    subprocess.run(["cp", "-a", w.root, tpl], check=True)
    return w, tpl


def sys_args(w, cmd):
    return {"new": (["new", "sx"], w.app), "apply": (["apply"], w.wt("sa")),
            "remove": (["remove", "sr"], w.app), "gc": (["gc"], w.app)}[cmd]


def strace_argv(w, trace, group, errno, k, args):
    argv = ["strace", "-f", "-q", "-y", "-s", "60", "-o", trace, "-e", f"trace={group}"]
    if errno == "KILL":
        argv += ["-e", f"inject={group}:signal=KILL:when={k}"]
    elif errno:
        argv += ["-e", f"inject={group}:error={errno}:when={k}"]
    return argv + ["--", w.h.binary] + args


def count_calls(trace, group):
    """The most calls of one syscall of `group` made by one process."""
    per = collections.Counter()
    names = set(group.split(","))
    with open(trace, errors="replace") as f:
        for line in f:
            m = re.match(r"(\d+)\s+(\w+)\(", line)
            if m and m.group(2) in names:
                per[(m.group(1), m.group(2))] += 1
    return max(per.values(), default=0)


def injected(trace):
    """The calls strace failed (`(INJECTED)`), or the calls at which it
    killed a process (that process's last line before `killed by SIGKILL`)."""
    hits, last = [], {}
    with open(trace, errors="replace") as f:
        for line in f:
            line = re.sub(r"\s+", " ", line.strip())
            pid = line.split(" ", 1)[0]
            if "(INJECTED)" in line:
                hits.append(line)
            elif "+++ killed by SIGKILL" in line and pid in last:
                hits.append(last[pid] + " -> SIGKILL")
            elif re.match(r"\d+ \w+\(", line):
                last[pid] = line
    return hits


def syscall_mode(h, plan_filter=None):
    kind = "syscall"
    if shutil.which("strace") is None:
        h.tally.add(kind, "syscall/no-strace", "strace is not installed: the syscall kind did not run",
                    "install strace (tests/run.sh does)")
        return
    t0 = time.monotonic()
    w, tpl = syscall_world(h)
    trace = os.path.join(h.work, "strace.out")
    rng = random.Random(h.seed)
    # How far each command gets with each syscall.
    reach = {}
    everything = ",".join(g for _, g in SYSCALLS)
    for cmd in SYS_COMMANDS:
        restore(tpl, w.root)
        args, cwd = sys_args(w, cmd)
        r = run(strace_argv(w, trace, everything, None, 0, args), cwd, h.env, h.timeout * 3)
        if r.rc != 0:
            h.tally.add(kind, "syscall/baseline-failed",
                        f"`provision {' '.join(args)}` fails even without a fault: {r.brief()}", "syscall world")
        for label, group in SYSCALLS:
            reach[(cmd, label)] = count_calls(trace, group)
    say("syscall: calls reached (most by one process): " + ", ".join(
        f"{c}/{l} {n}" for (c, l), n in sorted(reach.items()) if n))
    plan = []
    for cmd in SYS_COMMANDS:
        for label, group in SYSCALLS:
            n = reach[(cmd, label)]
            if n == 0:
                continue
            ks = list(range(1, n + 1))
            if h.quick:
                ks = sorted(rng.sample(ks, min(len(ks), 1)))
            for k in ks:
                for errno in ERRNOS + (["KILL"] if label in KILL_GROUPS else []):
                    plan.append((cmd, label, group, errno, k))
    if h.quick:
        rng.shuffle(plan)
        plan = sorted(plan[:h.args.quick_faults], key=lambda p: (SYS_COMMANDS.index(p[0]), p[1], p[4], p[3]))
    if plan_filter:
        plan = [p for p in plan if plan_filter(f"{p[0]}/{p[1]}/{p[3]}/{p[4]}")]
    budget = h.args.max_faults
    if budget and budget < len(plan):
        # Every n-th fault, so that each command, syscall and K range is in.
        step = -(-len(plan) // budget)
        plan = plan[::step]
    say(f"syscall: {len(plan)} faults planned" + (f" (every one of a spread of at most {budget})" if budget else ""))
    unreached = set()
    done = 0
    for cmd, label, group, errno, k in plan:
        if (cmd, label, errno) in unreached:
            continue
        if budget and done >= budget:
            break
        done += 1
        restore(tpl, w.root)
        args, cwd = sys_args(w, cmd)
        res = run(strace_argv(w, trace, group, errno, k, args), cwd, h.env, h.timeout * 3)
        hits = injected(trace)
        if not hits:
            h.tally.count(kind, "runs that did not reach the K-th call")
            if k > reach[(cmd, label)]:
                unreached.add((cmd, label, errno))
            continue
        h.tally.count(kind, "faults injected")
        h.tally.count(kind, f"faults injected in {cmd}")
        hit = hits[0][:160] + (f" (+{len(hits) - 1} more)" if len(hits) > 1 else "")
        how = "signal=KILL" if errno == "KILL" else f"error={errno}"
        repro = (f"`strace -f -e inject={group}:{how}:when={k} provision {' '.join(args)}` "
                 f"in the syscall world (`--only syscall:{cmd}/{label}/{errno}/{k}`); injected: {hit}")
        if errno == "KILL":
            h.tally.count(kind, "of which SIGKILL at the call")
        one_fault(h, w, cmd, res, hits, repro, killed=errno == "KILL")
        if done % 50 == 0:
            c = h.tally.counts[kind]
            say(f"syscall: {done}/{len(plan)} runs, {c['faults injected']} faults injected, "
                f"{len(h.tally.violations)} violations ({time.monotonic() - t0:.0f}s)")
    h.tally.seconds[kind] = time.monotonic() - t0


# The git steps provision runs, each faulted alone (the syscall kind faults
# every process at once): a wrapper `git` first on PATH runs the one
# matching invocation under strace, every other git as it is.
GIT_STEPS = ["worktree add", "worktree remove", "worktree prune", "branch -D", "status", "reset"]
GIT_GROUPS = [("unlink", "unlink,unlinkat,rmdir"), ("rename", "rename,renameat,renameat2"),
              ("write", "write,pwrite64"), ("openat", "openat")]
GIT_KS = [1, 2, 3, 5, 8, 13, 21]
GIT_WRAPPER = """#!/bin/sh
echo "$*" >> "$CHAOS_GIT_LOG"
case " $* " in
  *" $CHAOS_GIT_MATCH "*)
    if [ -n "$CHAOS_GIT_INJECT" ] && mkdir "$CHAOS_GIT_ONCE" 2>/dev/null; then
      exec strace -f -q -y -s 60 -o "$CHAOS_GIT_TRACE" -e trace="$CHAOS_GIT_GROUP" \
        -e inject="$CHAOS_GIT_INJECT" "$CHAOS_REAL_GIT" "$@"
    fi;;
esac
exec "$CHAOS_REAL_GIT" "$@"
"""


def step_slug(step):
    """`branch -D` as `--only` spells it: `branch-D`."""
    return re.sub(r"[^A-Za-z]+", "-", step).strip("-")


def gitstep_mode(h, plan_filter=None):
    """Faults inside one git step only: the K-th call of a syscall group in
    that git run (and its children) fails with EIO or kills the process,
    then the documented recovery runs, as in the syscall kind."""
    kind = "gitstep"
    if shutil.which("strace") is None:
        h.tally.add(kind, "gitstep/no-strace", "strace is not installed: the gitstep kind did not run",
                    "install strace (tests/run.sh does)")
        return
    t0 = time.monotonic()
    w, tpl = syscall_world(h, "gitstep")
    wrap_dir = os.path.join(h.work, "gitwrap")
    write(os.path.join(wrap_dir, "git"), GIT_WRAPPER)
    os.chmod(os.path.join(wrap_dir, "git"), 0o755)
    trace, log, once = (os.path.join(h.work, n) for n in ("git-strace.out", "git-calls.log", "git-once"))
    env = dict(h.env, PATH=wrap_dir + os.pathsep + h.env.get("PATH", os.environ.get("PATH", "")),
               CHAOS_REAL_GIT=shutil.which("git"), CHAOS_GIT_LOG=log, CHAOS_GIT_TRACE=trace,
               CHAOS_GIT_ONCE=once, CHAOS_GIT_MATCH="", CHAOS_GIT_INJECT="", CHAOS_GIT_GROUP="")
    # Which git steps each command runs.
    plan = []
    for cmd in SYS_COMMANDS:
        restore(tpl, w.root)
        rm(log)
        args, cwd = sys_args(w, cmd)
        run([h.binary] + args, cwd, env, h.timeout * 3)
        if not os.path.exists(log):
            continue  # it runs no git of its own (`apply` reads git through libgit2)
        with open(log, errors="replace") as f:
            calls = f.read()
        for step in GIT_STEPS:
            if f" {step} " not in f" {calls} ".replace("\n", " \n "):
                continue
            for label, group in GIT_GROUPS:
                for k in GIT_KS:
                    for how in ["error=EIO", "signal=KILL"]:
                        plan.append((cmd, step, label, group, how, k))
    if h.quick:
        plan = random.Random(h.seed).sample(plan, min(len(plan), h.args.quick_faults // 3))
    if plan_filter:
        plan = [p for p in plan if plan_filter(f"{p[0]}/{step_slug(p[1])}/{p[2]}/{p[4].split('=')[1]}/{p[5]}")]
    say(f"gitstep: {len(plan)} faults planned")
    unreached = set()
    for n, (cmd, step, label, group, how, k) in enumerate(plan, 1):
        if (cmd, step, label, how) in unreached:
            continue
        restore(tpl, w.root)
        for path in (trace, log):
            rm(path)
        if os.path.isdir(once):
            os.rmdir(once)
        args, cwd = sys_args(w, cmd)
        faulted = dict(env, CHAOS_GIT_MATCH=step, CHAOS_GIT_GROUP=group,
                       CHAOS_GIT_INJECT=f"{group}:{how}:when={k}")
        res = run([h.binary] + args, cwd, faulted, h.timeout * 3)
        hits = injected(trace) if os.path.exists(trace) else []
        if not hits:
            h.tally.count(kind, "runs that did not reach the K-th call")
            unreached.add((cmd, step, label, how))
            continue
        h.tally.count(kind, "faults injected")
        h.tally.count(kind, f"faults injected in `git {step}`")
        hit = hits[0][:160] + (f" (+{len(hits) - 1} more)" if len(hits) > 1 else "")
        spec = f"{cmd}/{step_slug(step)}/{label}/{how.split('=')[1]}/{k}"
        repro = (f"`provision {' '.join(args)}` with `git {step}` alone under `strace -f -e "
                 f"inject={group}:{how}:when={k}` (`--only gitstep:{spec}`); injected: {hit}")
        one_fault(h, w, cmd, res, hits, repro, killed=how == "signal=KILL", kind=kind)
        if n % 50 == 0:
            c = h.tally.counts[kind]
            say(f"gitstep: {n}/{len(plan)} runs, {c['faults injected']} faults injected, "
                f"{len(h.tally.violations)} violations ({time.monotonic() - t0:.0f}s)")
    h.tally.seconds[kind] = time.monotonic() - t0


def one_fault(h, w, cmd, res, hits, repro, killed=False, kind="syscall"):
    label = f"the faulted `provision {cmd}`"
    # The fault hit provision's own report (stdout or stderr): what it did
    # is done, only the telling failed, so its exit says nothing of the state.
    report_failed = not killed and any(re.search(r"\bwrite\([12]<", hit) for hit in hits)
    if killed:
        pass  # a killed process says nothing
    elif any(re.search(r"\bwrite\([12]<", hit) for hit in hits) and not res.panicked() and not res.hung:
        # The failed write may be the error message itself.
        h.tally.count(kind, "faulted runs whose stdout/stderr write failed (exit not judged)")
    else:
        h.judge(kind, res, label, repro, "faulted-")
    recovered = []
    if cmd == "new" and killed and res.rc != 0:
        # A killed `new`: `apply` in its worktree finishes it, or, with no
        # worktree to run in, `gc` takes away what is left.
        name = "sx"
        if os.path.exists(os.path.join(w.wt(name), ".git")):
            r = w.recover(["apply"], cwd=w.wt(name))
            recovered.append(("apply", r))
            expect = "A"
            if r.rc != 0:
                recovered.append(("gc", w.recover(["gc"])))
                expect = "B"
        else:
            recovered.append(("gc", w.recover(["gc"])))
            expect = "B"
    elif cmd == "new":
        name, expect = "sx", None
        if res.rc == 0:
            expect = "A"
        else:
            s = w.state(name)
            if w.present(s) and report_failed:
                expect = "A"
            elif w.present(s):
                # Complete and clean, yet reported as failed: the README says
                # a failed `new` takes back what it made.
                h.tally.add(kind, f"{kind}/failed-new-kept-complete-sandbox",
                            f"`provision new sx` exited {res.rc} ({res.brief()}) but left a complete sandbox "
                            f"that verifies clean", repro)
                expect = "A"
            elif "finishes it" in res.err and "provision remove sx" in res.err:
                # It could not take everything back (the fault hit the
                # take-back too) and said so, naming the recovery: the
                # recovery must converge.
                h.tally.count(kind, "failed new that named what it left for `remove`/`gc`")
                recovered.append(("gc", w.recover(["gc"])))
                expect = "B"
            else:
                if not w.gone(s):
                    cls = (f"{kind}/failed-new-left-branch" if w.gone(s, branch=False)
                           else f"{kind}/failed-new-left-residue: {w.signature(s, 'B')}")
                    h.tally.add(kind, cls, f"`provision new sx` failed ({res.brief()}) and left: {w.describe(s)}",
                                repro)
                recovered.append(("gc", w.recover(["gc"])))
                expect = "B"
    elif cmd == "apply":
        name, expect = "sa", "A"
        if res.rc != 0:
            recovered.append(("apply", w.recover(["apply"], cwd=w.wt("sa"))))
    elif cmd == "remove":
        name, expect = "sr", "B"
        if res.rc != 0:
            r = w.recover(["remove", "sr"])
            recovered.append(("remove sr", r))
            if r.rc != 0:
                recovered.append(("gc", w.recover(["gc"])))
    else:
        name, expect = None, None
        if res.rc != 0:
            recovered.append(("gc", w.recover(["gc"])))
        elif any(re.search(r"\bopenat\(", hit) for hit in hits):
            # A read that failed makes gc see less than is there (a record,
            # git's branches), and gc then keeps what it could not judge:
            # never deletes more, but exits 0. The next gc, which every
            # agent runs, must finish it; counted, not hidden.
            h.tally.count(kind, "gc under a read fault, then gc again")
            recovered.append(("gc", w.recover(["gc"])))
    for what, r in recovered:
        h.tally.count(kind, "recoveries run")
        h.judge(kind, r, f"recovery `provision {what}`", repro, "recovery-")
    rec_text = recovery_text(recovered, name) or "no recovery (it exited 0)"
    converged = True
    if name:
        s = w.state(name)
        if expect == "A" and not w.present(s):
            converged = False
            h.tally.add(kind, f"{kind}/not-converged/{cmd}: {w.signature(s, 'A')}",
                        f"sandbox {name}: after {rec_text}, wanted a sandbox that verifies clean: {w.describe(s)}", repro)
        elif expect == "B" and not w.gone(s):
            converged = False
            cls = (f"{kind}/branch-left" if w.gone(s, branch=False)
                   else f"{kind}/not-converged/{cmd}: {w.signature(s, 'B')}")
            h.tally.add(kind, cls, f"sandbox {name}: after {rec_text}, wanted nothing left: {w.describe(s)}", repro)
        if expect == "A" and s["locked"] == ADDING:
            h.tally.add(kind, f"{kind}/apply-left-git-lock",
                        f"sandbox {name}: after {rec_text}, git still has it locked with {ADDING!r}, "
                        f"which `gc` takes for a `new` cut short", repro)
        if expect == "A" and converged:
            w.add_work(name)
            g = w.prov(["gc"])
            s2 = w.state(name)
            lost = w.work_lost(name)
            if lost or not w.present(s2):
                converged = False
                h.tally.add(kind, f"{kind}/gc-removed-worktree-with-work" if not s2["dir"]
                            else f"{kind}/gc-broke-live-sandbox",
                            f"sandbox {name}: the user edited files in it and ran `provision gc` (exit {g.rc}): "
                            f"{w.describe(s2)}" + (f"; lost: {', '.join(lost)}" if lost else ""), repro)
            w.work.pop(w.wt(name), None)
            w.status0.pop(w.wt(name), None)
    else:
        # gc: the orphan og goes (its branch stays: gc leaves an orphan's
        # branch alone), the cut-short oc goes with its branch.
        for orphan, branch in [("og", False), ("oc", True)]:
            s = w.state(orphan, verify=False)
            if not w.gone(s, branch=branch):
                converged = False
                cls = (f"{kind}/branch-left" if w.gone(s, branch=False)
                       else f"{kind}/not-converged/gc: {orphan} {w.signature(s, 'B', branch)}")
                h.tally.add(kind, cls,
                            f"orphan {orphan}: after {rec_text}, wanted nothing left: {w.describe(s, branch)}", repro)
        for live in ["sa", "sr"]:
            s = w.state(live, verify=False)
            # sa's database was deleted on purpose (for `apply`); sr has one.
            if not (s["dir"] and s["entry"] and s["records"] and (s["db"] or live == "sa")):
                converged = False
                h.tally.add(kind, f"{kind}/gc-dropped-live-sandbox",
                            f"live sandbox {live}: after {rec_text}: {w.describe(s)}", repro)
    if recovered or res.rc != 0:
        if converged:
            h.tally.count(kind, "recoveries converged")
    for cls, what in w.invariants():
        h.tally.add(kind, f"{kind}/{cls}", what, repro)


# ----------------------------------------------------------------------------
# Hostile state


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")


def forge_lock(w, name, mutate):
    path = os.path.join(w.wt(name), "provision.lock")
    obj = read_json(path)
    mutate(obj)
    write(path, lock_text(obj))


def record_path(w, name):
    for r in w.records():
        if r.get("name") == name:
            return os.path.join(w.records_dir, r["_file"])
    raise RuntimeError(f"no record for {name}")


def claim_path(w, name):
    return os.path.join(w.admin_of(w.wt(name)), "provision-sandbox")


class Case:
    """One hostile case: a fresh world, the hostile state, steps, checks.
    Its violations are classed by the case (the hostile state is the cause),
    each naming the check that failed and the commands run so far."""

    def __init__(self, h, w, name, doc):
        self.h, self.w, self.name = h, w, name
        self.doc = " ".join((doc or name).split())
        self.repro = f"--only hostile:{name}"
        self.steps = []

    def step(self, args, cwd=None, what=None):
        r = self.w.prov(args, cwd=cwd)
        where = "" if cwd in (None, self.w.app) else f" in {os.path.basename(cwd)}"
        self.steps.append(f"`provision {' '.join(args)}`{where} (exit {r.rc})")
        self.h.tally.count("hostile", "commands run")
        self.h.judge("hostile", r, what or f"`provision {' '.join(args)}`{where}", self.repro,
                     ok=(0, 1) if args[0] == "verify" else (0,))
        return r

    def bad(self, problem, what):
        self.h.tally.add("hostile", f"hostile/{self.name}",
                         f"{problem}: {what} [{self.doc} Ran: {', '.join(self.steps) or 'nothing'}]", self.repro)

    def converge(self, name, how="apply"):
        """The documented recovery: `apply` in the worktree (and, if it names
        the lock as what is wrong, deleting the lock and `apply` again)."""
        w = self.w
        wt = w.wt(name)
        steps = []
        r = self.step(["apply"], cwd=wt, what=f"recovery `provision apply` in {name}")
        steps.append(f"apply (exit {r.rc}{': ' + r.brief() if r.rc else ''})")
        if r.rc != 0 and "provision.lock" in r.err and os.path.lexists(os.path.join(wt, "provision.lock")) \
                and not os.path.isdir(os.path.join(wt, "provision.lock")):
            rm(os.path.join(wt, "provision.lock"))
            r = self.step(["apply"], cwd=wt, what=f"recovery `provision apply` in {name} without its lock")
            steps.append(f"rm provision.lock, apply (exit {r.rc})")
        self.h.tally.count("hostile", "recoveries run")
        s = w.state(name)
        if w.present(s):
            self.h.tally.count("hostile", "recoveries converged")
            return True
        self.bad(f"not-converged ({w.signature(s, 'A')})", f"sandbox {name}: recovery {', '.join(steps)}: {w.describe(s)}")
        return False

    def finish(self):
        for cls, what in self.w.invariants():
            self.bad(cls, what)


def hostile_world(h):
    w = h.world("host")
    w.build()
    w.precious()
    for name in ["sa", "sr"]:
        w.must(["new", name])
    w.baseline()
    tpl = os.path.join(h.work, "tpl-host")
    subprocess.run(["cp", "-a", w.root, tpl], check=True)
    return w, tpl


def hostile_cases():
    cases = []

    def case(fn):
        cases.append((fn.__name__.replace("_", "-"), fn))
        return fn

    def escape(c, path, target):
        w = c.w

        def add(obj):
            obj["links"].append({"kind": "file", "path": path, "target": target})
            obj["links"].sort(key=lambda l: l["path"])
        forge_lock(w, "sa", add)
        c.step(["verify"], cwd=w.wt("sa"))
        c.step(["apply"], cwd=w.wt("sa"))
        wt = w.wt("sa")
        changed = [l for l in w.git_status(wt) if l not in w.status0.get(wt, [])]
        if changed:
            c.bad("tracked-file-deleted", f"sandbox sa: git status after apply: {changed}")
            # The user restores it from git, then the recovery runs.
            w.git(["checkout", "--", "."], cwd=wt, check=False)
        # What it deletes shows in the invariants (outside, main checkout,
        # precious sandboxes) or, inside sa, in sa's git status.
        c.converge("sa")

    @case
    def lock_link_parent(c):
        """A lock link `../victim-link`: a symlink beside the repository."""
        escape(c, "../victim-link", os.readlink(os.path.join(c.w.root, "victim-link")))

    @case
    def lock_link_absolute(c):
        """A lock link at an absolute path outside the repository."""
        p = os.path.join(c.w.victims, "abs-link")
        escape(c, p, os.readlink(p))

    @case
    def lock_link_other_worktree(c):
        """A lock link naming another sandbox's link: `../worktree-keep-a/.env`."""
        escape(c, "../worktree-keep-a/.env", os.readlink(os.path.join(c.w.wt("keep-a"), ".env")))

    @case
    def lock_link_into_main(c):
        """A lock link naming the user's own symlink in the main checkout."""
        escape(c, "../app/shortcut", "src")

    @case
    def lock_link_through_user_symlink(c):
        """A lock link under the user's own symlink to a folder outside."""
        wt = c.w.wt("sa")
        os.symlink("../victims", os.path.join(wt, "ext"))
        c.w.work[wt] = {"ext": entry(os.path.join(wt, "ext"))}
        c.w.status0[wt] = c.w.git_status(wt)
        escape(c, "ext/inner-link", "data.txt")

    @case
    def lock_link_tracked_symlink(c):
        """A lock link naming a symlink git tracks (docs/current)."""
        escape(c, "docs/current", "v1.md")

    @case
    def lock_env_file_other_worktree(c):
        """A lock whose env file is another sandbox's: `../worktree-keep-a/.env.local`."""
        w = c.w

        def env(obj):
            obj["env"]["file"] = "../worktree-keep-a/.env.local"
        forge_lock(w, "sa", env)
        c.step(["verify"], cwd=w.wt("sa"))
        c.step(["apply"], cwd=w.wt("sa"))
        c.step(["env"], cwd=w.wt("sa"))
        c.step(["remove", "sa"])
        s = w.state("sa", verify=False)
        if s["dir"]:
            c.converge("sa")

    @case
    def lock_database_of_another_sandbox(c):
        """A lock naming keep-a's database as sa's."""
        w = c.w
        other = read_json(os.path.join(w.wt("keep-a"), "provision.lock"))["database"]

        def db(obj):
            obj["database"] = other
        forge_lock(w, "sa", db)
        c.step(["verify"], cwd=w.wt("sa"))
        c.step(["apply"], cwd=w.wt("sa"))
        c.converge("sa")

    @case
    def lock_env_keys_that_are_code(c):
        """Lock overrides whose key and value are shell code; `env`, eval'd."""
        w = c.w
        pwn = os.path.join(w.victims, "pwned")

        def env(obj):
            obj["env"]["overrides"]["X$(touch " + pwn + "-key)"] = "1"
            obj["env"]["overrides"]["SAFE"] = "$(touch " + pwn + "-value)`touch " + pwn + "-tick`"
        forge_lock(w, "sa", env)
        for shell in ["bash", None]:
            args = ["env"] + (["--shell", shell] if shell else [])
            r = c.step(args, cwd=w.wt("sa"))
            if r.rc == 0:
                script = r.out if shell else "set -a\n" + r.out
                run(["bash", "-c", script], w.wt("sa"), w.h.env, 30)
        c.step(["exec", "--", "true"], cwd=w.wt("sa"))
        c.converge("sa")

    @case
    def lock_setup_commands_forged(c):
        """A lock listing a setup command the recipe does not have."""
        w = c.w

        def setup(obj):
            obj["setup"] = [{"run": "touch ../victims/pwned-setup", "completed": False}]
        forge_lock(w, "sa", setup)
        c.step(["apply"], cwd=w.wt("sa"))
        c.converge("sa")

    @case
    def lock_symlink_outside(c):
        """provision.lock a symlink to a file outside the worktree."""
        w = c.w
        lock = os.path.join(w.wt("sa"), "provision.lock")
        target = os.path.join(w.victims, "lock.json")
        obj = read_json(lock)
        obj["port"] = obj["port"] + 1  # stale, so apply writes the lock
        write(target, lock_text(obj))
        w.base_outside = snapshot(w.root, w.outside_skip)
        os.unlink(lock)
        os.symlink(target, lock)
        c.step(["verify"], cwd=w.wt("sa"))
        c.step(["apply"], cwd=w.wt("sa"))
        c.converge("sa")
        c.step(["remove", "sa"])

    @case
    def lock_truncated(c):
        """sa's provision.lock cut to half its length."""
        w = c.w
        lock = os.path.join(w.wt("sa"), "provision.lock")
        with open(lock, "r+") as f:
            f.truncate(os.path.getsize(lock) // 2)
        c.step(["verify"], cwd=w.wt("sa"))
        c.step(["status"])
        c.step(["gc"])
        c.converge("sa")

    @case
    def lock_is_a_folder_with_user_files(c):
        """A real folder where provision.lock belongs, holding the user's file."""
        w = c.w
        lock = os.path.join(w.wt("sr"), "provision.lock")
        os.unlink(lock)
        write(os.path.join(lock, "notes.txt"), "the user's file in a folder named provision.lock\n")
        w.work[w.wt("sr")] = {"provision.lock/notes.txt": entry(os.path.join(lock, "notes.txt"))}
        c.step(["remove", "sr"])
        c.step(["gc"])
        if w.work_lost("sr"):
            return
        c.step(["apply"], cwd=w.wt("sr"))
        if w.work_lost("sr"):
            return
        # The user moves their folder away; the sandbox then converges.
        os.makedirs(os.path.join(w.root, USER_KEPT), exist_ok=True)
        shutil.move(lock, os.path.join(w.root, USER_KEPT, "provision.lock-folder"))
        w.work.pop(w.wt("sr"))
        c.converge("sr")

    @case
    def record_truncated(c):
        """One truncated sandboxes/<id>.json: every other sandbox keeps working."""
        w = c.w
        rec = record_path(w, "sr")
        with open(rec, "r+") as f:
            f.truncate(os.path.getsize(rec) // 2)
        blocked = []
        for args, cwd in [(["status"], None), (["verify"], w.wt("sa")), (["apply"], w.wt("sa")),
                          (["new", "hx"], None), (["remove", "hx"], None), (["gc"], None)]:
            r = c.step(args, cwd=cwd)
            if r.rc != 0:
                blocked.append(f"`provision {' '.join(args)}` exit {r.rc}: {r.brief()[:140]}")
        if blocked:
            c.bad("blocks-other-sandboxes", "; ".join(blocked))
        c.converge("sr")

    @case
    def record_path_elsewhere(c):
        """sr's record pointing at a folder beside the repository."""
        w = c.w
        rec = record_path(w, "sr")
        obj = read_json(rec)
        obj["path"] = os.path.join(w.victims, "dir")
        write_json(rec, obj)
        c.step(["status"])
        c.step(["gc"])
        c.step(["remove", "sr"])
        c.step(["gc"])

    @case
    def record_ghost_with_another_sandboxs_database(c):
        """A record of no worktree (`ghost`) naming keep-a's database."""
        w = c.w
        obj = read_json(record_path(w, "keep-a"))
        obj.update(id="ghost", name="ghost", path=w.wt("ghost"), branch=None, port=obj["port"] + 7)
        write_json(os.path.join(w.records_dir, "ghost.json"), obj)
        c.step(["gc"])
        c.step(["remove", "ghost"])

    @case
    def record_ghost_with_unowned_database(c):
        """A record of no worktree naming the unowned database (control)."""
        w = c.w
        obj = read_json(record_path(w, "sr"))
        obj.update(id="ghost", name="ghost", path=w.wt("ghost"), branch=None, port=obj["port"] + 7,
                   database={"kind": "sqlite", "name": f"{REPO}_{SQUATTER}",
                             "location": f"$GIT_COMMON_DIR/provision/sqlite/{REPO}_{SQUATTER}.sqlite"})
        write_json(os.path.join(w.records_dir, "ghost.json"), obj)
        c.step(["gc"])
        c.step(["remove", "ghost"])

    @case
    def record_id_traversal(c):
        """A record whose id is `../../../../victims/evil`."""
        w = c.w
        obj = read_json(record_path(w, "sr"))
        obj.update(id="../../../../victims/evil", name="evil", path=w.wt("evil"), branch=None,
                   port=obj["port"] + 9,
                   database={"kind": "sqlite", "name": f"{REPO}_evil",
                             "location": f"$GIT_COMMON_DIR/provision/sqlite/{REPO}_evil.sqlite"})
        write_json(os.path.join(w.records_dir, "evil.json"), obj)
        c.step(["status"])
        c.step(["gc"])
        c.step(["remove", "evil"])
        c.step(["new", "hx"])

    @case
    def record_symlink_outside(c):
        """sandboxes/<id>.json of sr a symlink to a copy outside."""
        w = c.w
        rec = record_path(w, "sr")
        obj = read_json(rec)
        obj["lock_hash"] = "blake3:" + "0" * 64  # stale, so apply writes the record
        target = os.path.join(w.victims, "record.json")
        write_json(target, obj)
        w.base_outside = snapshot(w.root, w.outside_skip)
        os.unlink(rec)
        os.symlink(target, rec)
        c.step(["apply"], cwd=w.wt("sr"))
        c.converge("sr")
        c.step(["remove", "sr"])

    def claim(c, text, name="keep-a"):
        w = c.w
        path = claim_path(w, name)
        with open(path, "w") as f:
            f.write(text)
        c.step(["gc"])
        c.step(["status"])
        if not any(x.get("name") == name for x in w.records()):
            c.bad("record-dropped", f"live sandbox {name}'s registry record is gone")

    @case
    def claim_forged_other_name(c):
        """keep-a's claim (.git/worktrees/<id>/provision-sandbox) names another sandbox, `intruder`."""
        claim(c, "intruder\n")

    @case
    def claim_truncated_empty(c):
        """keep-a's claim is empty (truncated)."""
        claim(c, "")

    @case
    def claim_symlink_outside(c):
        """sa's claim is a symlink to a file outside the repository."""
        w = c.w
        target = os.path.join(w.victims, "claim.txt")
        write(target, "keep-a\n")
        w.base_outside = snapshot(w.root, w.outside_skip)
        path = claim_path(w, "sa")
        os.unlink(path)
        os.symlink(target, path)
        c.step(["gc"])
        rm(os.path.join(w.wt("sa"), ".npmrc"))
        c.step(["apply"], cwd=w.wt("sa"))
        c.converge("sa")

    @case
    def claim_is_a_folder(c):
        """sr's claim is a folder."""
        w = c.w
        path = claim_path(w, "sr")
        os.unlink(path)
        os.makedirs(os.path.join(path, "x"))
        c.step(["gc"])
        c.step(["apply"], cwd=w.wt("sr"))
        c.step(["remove", "sr"])
        c.step(["gc"])
        s = w.state("sr")
        if not (w.present(s) or w.gone(s)):
            c.bad("not-converged", f"sandbox sr: {w.describe(s)}")

    @case
    def squatting_database(c):
        """`new squatter` where an unowned database already sits."""
        w = c.w
        r = c.step(["new", SQUATTER])
        if r.rc == 0:
            c.bad("unowned-db-adopted", f"`provision new {SQUATTER}` succeeded over an unowned database")
        c.step(["gc"])
        s = w.state(SQUATTER, verify=False)
        s["db"] = []  # the unowned file is checked by the invariants
        if not w.gone(s):
            c.bad("not-converged", f"after a refused `provision new {SQUATTER}` and gc: {w.describe(s)}")

    @case
    def cut_short_then_apply_then_gc(c):
        """A worktree a killed `new` left (git's lock with provision's reason),
        finished by `apply`; the user works in it; then `gc`."""
        w = c.w
        w.git(["worktree", "add", "-q", "--lock", "--reason", ADDING, "-b", "cs", w.wt("cs")])
        r = c.step(["apply"], cwd=w.wt("cs"))
        s = w.state("cs")
        if not w.present(s):
            c.bad("not-converged", f"sandbox cs: {w.describe(s)}")
            return
        w.add_work("cs")
        c.steps.append("(the user edits a tracked file and adds an untracked one)")
        c.step(["gc"])
        s = w.state("cs")
        if not w.present(s):
            c.bad("live-sandbox-removed", f"sandbox cs: {w.describe(s)}")

    @case
    def moved_worktree_then_gc(c):
        """sr moved with `mv` (not `git worktree move`), then `gc`."""
        w = c.w
        moved = os.path.join(w.root, "worktree-sr-moved")
        os.rename(w.wt("sr"), moved)
        v = c.step(["verify"], cwd=moved)
        if v.rc == 2 and "repair" not in v.err:
            c.bad("no-repair-hint", f"`provision verify` in the moved worktree: {v.brief()}")
        c.step(["gc"])
        if not os.path.exists(w.db_path("sr")):
            c.bad("database-dropped", f"sr's database is gone although its worktree exists at {moved} "
                                      f"(git keeps a missing worktree's entry for gc.worktreePruneExpire)")
        rep = run(["git", "worktree", "repair"], moved, w.h.env, 60)
        c.steps.append(f"`git worktree repair` in the moved folder (exit {rep.rc}{': ' + rep.err.strip()[:100] if rep.rc else ''})")
        c.step(["apply"], cwd=moved)
        v = c.step(["verify"], cwd=moved)
        if v.rc != 0:
            c.bad("not-converged", f"verify in the moved, repaired worktree: exit {v.rc}: {findings(v)}")
        os.rename(moved, w.wt("sr"))
        w.git(["worktree", "repair"], cwd=w.wt("sr"), check=False)

    return cases


def hostile_mode(h, only=None):
    kind = "hostile"
    t0 = time.monotonic()
    w, tpl = hostile_world(h)
    cases = hostile_cases()
    if only:
        cases = [(n, f) for n, f in cases if only(n)]
    for name, fn in cases:
        restore(tpl, w.root)
        w2 = h.world("host")
        w2.__dict__.update({k: v for k, v in w.__dict__.items()})
        w2.work = {k: dict(v) for k, v in w.work.items()}
        w2.status0 = dict(w.status0)
        c = Case(h, w2, name, fn.__doc__)
        h.tally.count(kind, "cases")
        before = len(h.tally.violations)
        guarded(h, kind, lambda: (fn(c), c.finish()))
        say(f"hostile: {name}: {len(h.tally.violations) - before} violation(s)")
    h.tally.seconds[kind] = time.monotonic() - t0


# ----------------------------------------------------------------------------


def report(h, kinds):
    t = h.tally
    out = ["", "== chaos tally =="]
    for kind in kinds + [k for k in ("recovery",) if k in t.counts]:
        c = t.counts.get(kind, {})
        secs = t.seconds.get(kind)
        out.append(f"{kind}{f' ({secs:.0f}s)' if secs is not None else ''}:")
        for k, v in sorted(c.items()):
            out.append(f"  {k}: {v}")
        out.append(f"  violations: {sum(1 for v in t.violations if v.kind == kind)}")
    listed = sum(1 for v in t.violations if v.known and v.known[0] == "listed")
    klass = sum(1 for v in t.violations if v.known and v.known[0] == "class")
    new = sum(1 for v in t.violations if not v.known)
    out.append(f"violations: {len(t.violations)} ({listed} KNOWN: listed in issue 12; {klass} KNOWN CLASS: "
               f"an unlisted instance of a class issue 12 names; {new} NEW)")
    by = collections.defaultdict(list)
    for v in t.violations:
        by[v.cls].append(v)
    for cls in sorted(by):
        vs = by[cls]
        out.append(f"\n[{tag_of(vs[0].known)}] {cls} ({len(vs)})")
        for v in vs[: h.args.show]:
            out.append(f"  - {v.what}")
            out.append(f"    reproduce: {v.repro}")
        if len(vs) > h.args.show:
            out.append(f"  ... and {len(vs) - h.args.show} more of this class")
    out.append(f"\ntotal time {time.monotonic() - t.started:.0f}s; work dir {h.work}"
               + ("" if h.args.keep else " (deleted)"))
    print("\n".join(out), flush=True)
    if h.args.json:
        with open(h.args.json, "w") as f:
            json.dump({"counts": {k: dict(v) for k, v in t.counts.items()},
                       "seconds": t.seconds,
                       "violations": [vars(v) for v in t.violations]}, f, indent=2, default=str)


def main():
    global QUIET
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(target, "release", "provision"),
                   help="the provision binary (default: the release build)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    p.add_argument("--rounds", type=int, default=None, help="kill rounds (default 100; --quick 6)")
    p.add_argument("--agents", type=int, default=8, help="agents at once in the kill kind (default 8)")
    p.add_argument("--pg-rounds", type=int, default=None, help="pgkill rounds (default 40; --quick 4)")
    p.add_argument("--quick-pg-faults", type=int, default=10, help="pgstep kills in --quick (default 10)")
    p.add_argument("--pg-agents", type=int, default=6, help="agents at once in the pgkill kind (default 6)")
    p.add_argument("--kinds", default="kill,syscall,hostile,gitstep,pgkill,pgstep",
                   help="comma-separated: kill,syscall,hostile,gitstep (one git step faulted alone),"
                   "pgkill (the kill kind on PostgreSQL, a private server it starts), "
                   "pgstep (PostgreSQL: killed at each statement)")
    p.add_argument("--quick", action="store_true",
                   help="a bounded subset (6 kill rounds, 60 syscall faults, 20 gitstep faults, every hostile case, "
                   "4 pgkill rounds, 10 pgstep kills)")
    p.add_argument("--quick-faults", type=int, default=60, help="syscall faults in --quick (default 60)")
    p.add_argument("--max-faults", type=int, default=0,
                   help="at most this many syscall faults, spread evenly over the whole plan")
    p.add_argument("--only", default=None,
                   help="only matching cases: `hostile:NAME`, `syscall:CMD/SYSCALL/ERRNO/K` (prefixes match)")
    p.add_argument("--timeout", type=float, default=60, help="seconds before a run counts as hung (default 60)")
    p.add_argument("--show", type=int, default=6, help="violations shown per class (default 6)")
    p.add_argument("--work", default=None, help="work directory (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--json", default=None, help="also write the tally and violations as JSON here")
    p.add_argument("-q", "--quiet", action="store_true", help="only the tally")
    args = p.parse_args()
    QUIET = args.quiet
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.rounds is None:
        args.rounds = 6 if args.quick else 100
    if args.pg_rounds is None:
        args.pg_rounds = 4 if args.quick else 40
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    only = {}
    if args.only:
        kind_, _, spec = args.only.partition(":")
        kinds = [kind_]
        # `syscall:new/write/EIO/4` is that one fault; `syscall:new/write`
        # all of them; `hostile:NAME` that case, else the cases NAME begins.
        only[kind_] = lambda s, spec=spec: (s == spec or s.startswith(spec + "/")
                                            or (kind_ == "hostile" and s.startswith(spec)))
    for k in kinds:
        if k not in ("kill", "syscall", "hostile", "gitstep", "pgkill", "pgstep"):
            p.error(f"unknown kind {k!r}")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"chaos: no provision binary at {args.binary} (cargo build --release)")
    h = Harness(args)
    say(f"chaos: seed {args.seed}, binary {h.binary}, kinds {','.join(kinds)}, work {h.work}")
    try:
        if "hostile" in kinds:
            hostile_mode(h, only.get("hostile"))
        if "syscall" in kinds:
            syscall_mode(h, only.get("syscall"))
        if "gitstep" in kinds:
            gitstep_mode(h, only.get("gitstep"))
        if "kill" in kinds:
            kill_mode(h, args.rounds, args.agents)
        if "pgkill" in kinds:
            pgkill_mode(h, args.pg_rounds, args.pg_agents)
        if "pgstep" in kinds:
            pgstep_mode(h, only.get("pgstep"))
    finally:
        report(h, kinds)
        if not args.keep:
            shutil.rmtree(h.work, ignore_errors=True)
    sys.exit(1 if h.tally.violations else 0)


if __name__ == "__main__":
    main()
