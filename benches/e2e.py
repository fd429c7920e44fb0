"""The main job end to end: the `import` command, run as a process, loading
a generated users file (canonical columns, manager chains, several roles
each) into a SQLite database, beside what a team would use instead, all in
the same run:

- the command (its default, text report) into a fresh database, the same
  file again, and a changed file (about 10% of the users updated, 1%
  deleted, 5% new); a dry run of the changed file; a fresh import with
  `--report json`, whose report has a row per line; and a fresh import
  that a trigger refuses at its last row, rolled back whole, whose every
  row has a line in the text report; and a fresh import under
  `--on-error skip-invalid` of the file with 1% of its rows invalid (an
  `enabled` cell that is neither true nor false, on users who manage no
  one), which imports the other 99%, and the same file under the default
  policy, which rejects it and imports nothing; and a fresh import of the
  users file in UTF-16 (with its byte order mark: Excel's "Unicode
  Text"), converted as it is read;
- `benches/naive_import.py` (csv + sqlite3, upsert by user id, roles in a
  join table, one transaction), fresh and again;
- the plain prepared INSERT of `benches/sqlite.rs` (`--only insert`, its own
  generated rows, as many);
- sqlite3's own CSV import, the floor with no checks, where the sqlite3
  program is installed.

Each figure is the process's wall time, CPU time and peak RSS (the
kernel's). The database is read back after each run. The last line gives
the ratios (speed = 1 / time):

    ratio import/insert=… import/python=… reimport/python=… rss/file=…

    python3 benches/e2e.py [--rows N[,N…]] [--reps N] [--keep DIR]

(by default 100,000 and 1,000,000 rows, every case run 3 times in turn,
and each figure the median of its runs; the plain INSERT's the best)
"""

import argparse
import os
import random
import re
import shutil
import statistics
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ["Staff", "Admin", "Tester", "Coordinator", "Auditor", "Manager", "Sales", "Support"]
HEADER = "userId,firstName,lastName,email,reportsTo,roles,enabled,taskNotification,transaction\n"


def user_row(i, rng, version=0, delete=False):
    # Chains of 50: each user reports to the one before.
    manager = "" if i % 50 == 0 else "u%d" % (i - 1)
    roles = "|".join(sorted(rng.sample(ROLES, 1 + i % 3)))
    last = "Last%d%s" % (i % 997, "x" * version)
    return "u%d,First%d,%s,u%d@example.com,%s,%s,true,Email,%s\n" % (
        i, i % 101, last, i, manager, roles, "DELETE" if delete else "")


def generate(path, rows):
    rng = random.Random(7)
    with open(path, "w", newline="") as f:
        f.write(HEADER)
        for i in range(rows):
            f.write(user_row(i, rng))


def invalid(base, path):
    """The base file with the users who end a chain (who manage no one)
    made invalid on every other chain: 1% of the rows."""
    with open(base) as src, open(path, "w", newline="") as f:
        f.write(src.readline())
        for i, row in enumerate(src):
            if i % 100 == 99:
                row = row.replace(",true,", ",maybe,", 1)
            f.write(row)


def changed(path, rows):
    """About 10% updated, 1% deleted (only users who manage no one kept
    in the file), 5% new."""
    rng = random.Random(7)
    rng2 = random.Random(11)
    with open(path, "w", newline="") as f:
        f.write(HEADER)
        for i in range(rows):
            row_rng_state = user_row(i, rng)  # keep the roles the base file drew
            k = rng2.random()
            if k < 0.10:
                f.write(user_row(i, random.Random(i), version=1))
            elif k < 0.11 and i % 50 == 49:
                f.write(user_row(i, random.Random(i), delete=True))
            else:
                f.write(row_rng_state)
        for j in range(rows // 20):
            f.write(user_row(rows + j, rng))


def peak_rss(cmd):
    """Runs `cmd` under a wrapper that reports its own child's peak RSS."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(r.returncode, time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss * 1024)\n"
    )
    p = subprocess.run([sys.executable, "-c", wrapper] + cmd, capture_output=True, text=True)
    code, wall, cpu, rss = p.stdout.split()
    return int(code), float(wall), float(cpu), int(rss)


def users_in(db, table="users"):
    return sqlite3.connect(db).execute("SELECT count(*) FROM %s" % table).fetchone()[0]


def line(name, wall, cpu, rss, rows, file_bytes):
    print("%-36s wall %8.2f s  cpu %8.2f s  %10.0f rows/s  peak RSS %7.1f MB (%.2fx file)"
          % (name, wall, cpu, rows / wall if wall else 0, rss / 1e6, rss / file_bytes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="100000,1000000")
    ap.add_argument("--keep", help="keep the files and databases here")
    ap.add_argument("--reps", type=int, default=3,
                    help="runs of every case, in turn (the figures are their medians)")
    args = ap.parse_args()
    reps = max(1, args.reps)
    sizes = [int(x) for x in args.rows.split(",")]
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "import"],
                   cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "examples", "import")
    work = args.keep or tempfile.mkdtemp(prefix="user-import-e2e-")
    os.makedirs(work, exist_ok=True)
    naive = os.path.join(ROOT, "benches", "naive_import.py")
    # The command's defaults, with room for the changed file's extra rows
    # (the default row limit is 1,000,000).
    profile = os.path.join(work, "profile.json")
    with open(profile, "w") as f:
        f.write('{"unknown_roles": "create", "limits": {"rows": 10000000}}')
    # A measured command's peak RSS can be no less than the measuring
    # wrapper's at the moment it starts the command (the child shares its
    # memory until it runs the command): this floor, measured with `true`.
    floor = peak_rss(["true"])[3]
    print("e2e: peak RSS figures are exact above the wrapper's floor of %.1f MB" % (floor / 1e6))
    ratio = None
    for rows in sizes:
        base = os.path.join(work, "users-%d.csv" % rows)
        change = os.path.join(work, "changed-%d.csv" % rows)
        generate(base, rows)
        changed(change, rows)
        invalid(base, os.path.join(work, "invalid-%d.csv" % rows))
        # The same users in UTF-16 (Excel's "Unicode Text"), twice the bytes.
        with open(base, encoding="utf-8") as f, open(os.path.join(work, "utf16-%d.csv" % rows), "wb") as out:
            out.write(b"\xff\xfe" + f.read().encode("utf-16-le"))
        size = os.path.getsize(base)
        print("e2e: rows=%d file=%.1f MB" % (rows, size / 1e6))
        results = {}

        def case(name, cmd, check_db=None, want=None, table="users", status=0):
            code, wall, cpu, rss = peak_rss(cmd)
            if code != status:
                sys.exit("%s: exit %d, want %d (%s)" % (name, code, status, " ".join(cmd)))
            if check_db is not None:
                got = users_in(check_db, table)
                if want is not None and got != want:
                    sys.exit("%s: %d users read back, want %d" % (name, got, want))
            if reps > 1:
                print("  run %d: %-36s wall %7.2f s  cpu %7.2f s  peak RSS %7.1f MB"
                      % (rep + 1, name, wall, cpu, rss / 1e6))
            results.setdefault(name, []).append((wall, cpu, rss))

        # Every case in turn, `reps` times: a slow spell of the machine
        # falls on all of them rather than on one.
        for rep in range(reps):
            run_cases(case, rows, work, binary, profile, base, change, naive)
        # Each figure is the median of its runs.
        med = {name: tuple(statistics.median(r[i] for r in runs) for i in range(3))
               for name, runs in results.items()}
        for name, (wall, cpu, rss) in med.items():
            line(name, wall, cpu, rss, rows, size)
        results = med

        # The plain prepared INSERT of benches/sqlite.rs, on as many rows
        # (the best of as many runs).
        p = subprocess.run(["cargo", "bench", "--quiet", "--bench", "sqlite", "--",
                            "--rows", str(rows), "--reps", str(reps), "--only", "insert"],
                           cwd=ROOT, capture_output=True, text=True)
        m = re.search(r"^insert\s+best\s+([0-9.]+)s", p.stdout, re.M)
        if not m:
            sys.exit("the sqlite bench gave no insert time:\n" + p.stdout + p.stderr)
        insert = float(m.group(1))
        print("%-36s wall %8.2f s  (in-process, benches/sqlite.rs)" % ("plain prepared INSERT", insert))
        imp = results["import, fresh database"][0]
        again = results["import, same file again"][0]
        ratio = "ratio import/insert=%.2f import/python=%.2f reimport/python=%.2f rss/file=%.2f dryrun_rss/file=%.2f" % (
            insert / imp,
            results["python script, fresh database"][0] / imp,
            results["python script, same file again"][0] / again,
            results["import, fresh database"][2] / size,
            results["import --dry-run, changed file"][2] / size,
        )
        print(ratio)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def run_cases(case, rows, work, binary, profile, base, change, naive):
    """One run of every case, each database made afresh where it must be."""
    db = os.path.join(work, "import-%d.db" % rows)
    for f in (db, db + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    # The command as an administrator runs it: the text report.
    command = [binary, "--db", db, "--profile", profile]
    case("import, fresh database", command + [base], db, rows)
    case("import, same file again", command + [base], db, rows)
    deleted = sum(1 for l in open(change) if l.rstrip().endswith(",DELETE"))
    case("import --dry-run, changed file", command + ["--dry-run", change])
    case("import, changed file", command + [change], db, rows + rows // 20 - deleted)
    # The JSON report, which holds a report row per line of the file.
    jdb = os.path.join(work, "import-json-%d.db" % rows)
    for f in (jdb, jdb + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    case("import --report json, fresh db", [binary, "--db", jdb, "--profile", profile,
                                            "--report", "json", base], jdb, rows)

    # An import that fails at its last row and is rolled back whole:
    # every row has a line to say in the report. A trigger refuses the
    # last user (the database is made, empty, by a file of no rows,
    # which the command refuses as empty).
    rdb = os.path.join(work, "import-rollback-%d.db" % rows)
    empty = os.path.join(work, "empty.csv")
    for f in (rdb, rdb + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    with open(empty, "w") as f:
        f.write(HEADER)
    made = subprocess.run([binary, "--db", rdb, "--profile", profile, empty],
                          capture_output=True, text=True)
    if made.returncode != 1 or "[file_empty]" not in made.stdout:
        sys.exit("making an empty database: exit %d\n%s%s" % (made.returncode, made.stdout, made.stderr))
    c = sqlite3.connect(rdb)
    with c:
        c.execute("CREATE TRIGGER refuse_last BEFORE INSERT ON users WHEN NEW.user_id = 'u%d' "
                  "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END" % (rows - 1))
    c.close()
    case("import, rolled back at its last row", [binary, "--db", rdb, "--profile", profile, base],
         rdb, 0, status=1)

    # 1% of the rows invalid, the others imported (exit 1: rows failed).
    sdb = os.path.join(work, "import-skip-%d.db" % rows)
    for f in (sdb, sdb + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    case("import skip-invalid, 1% rows bad", [binary, "--db", sdb, "--profile", profile,
                                              "--on-error", "skip-invalid",
                                              os.path.join(work, "invalid-%d.csv" % rows)],
         sdb, rows - rows // 100, status=1)
    # The same file under the default policy: rejected, nothing imported.
    xdb = os.path.join(work, "import-rejected-%d.db" % rows)
    for f in (xdb, xdb + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    case("import, rejected (1% rows bad)", [binary, "--db", xdb, "--profile", profile,
                                            os.path.join(work, "invalid-%d.csv" % rows)],
         xdb, 0, status=1)

    # The same users in UTF-16, converted as the file is read.
    udb = os.path.join(work, "import-utf16-%d.db" % rows)
    for f in (udb, udb + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    case("import, UTF-16 file, fresh database", [binary, "--db", udb, "--profile", profile,
                                                 os.path.join(work, "utf16-%d.csv" % rows)],
         udb, rows)

    pdb = os.path.join(work, "python-%d.db" % rows)
    if os.path.exists(pdb):
        os.remove(pdb)
    case("python script, fresh database", [sys.executable, naive, pdb, base], pdb, rows)
    case("python script, same file again", [sys.executable, naive, pdb, base], pdb, rows)

    if shutil.which("sqlite3"):
        fdb = os.path.join(work, "floor-%d.db" % rows)
        if os.path.exists(fdb):
            os.remove(fdb)
        case("sqlite3 .import (floor, no checks)",
             ["sqlite3", fdb, "-cmd", ".mode csv", ".import %s users" % base], fdb, rows)
    else:
        print("sqlite3 is not installed: no floor")


if __name__ == "__main__":
    main()
