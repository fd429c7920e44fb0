"""The script a team would write instead of the import command: csv +
sqlite3, upsert by user id, roles in a join table, one transaction, the same
unique indexes. The end-to-end benchmark (benches/e2e.py) runs it beside the
command, as a baseline.

    python3 benches/naive_import.py DB FILE
"""

import csv
import sqlite3
import sys


def main(db_path, file_path):
    db = sqlite3.connect(db_path)
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, first_name TEXT,
            last_name TEXT, email TEXT, enabled TEXT, reports_to TEXT,
            user_id_norm TEXT NOT NULL UNIQUE, email_norm TEXT UNIQUE);
        CREATE TABLE IF NOT EXISTS roles (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, name_norm TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS user_roles (
            user INTEGER NOT NULL, role INTEGER NOT NULL, PRIMARY KEY (user, role));
        """
    )
    roles = {}
    with open(file_path, newline="", encoding="utf-8") as f, db:
        for row in csv.DictReader(f):
            uid = row["userId"].strip()
            if (row.get("transaction") or "").strip().upper() == "DELETE":
                db.execute("DELETE FROM users WHERE user_id_norm = ?", (uid.lower(),))
                continue
            db.execute(
                """INSERT INTO users (user_id, first_name, last_name, email, enabled,
                                      reports_to, user_id_norm, email_norm)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (user_id_norm) DO UPDATE SET
                     first_name = excluded.first_name, last_name = excluded.last_name,
                     email = excluded.email, enabled = excluded.enabled,
                     reports_to = excluded.reports_to, email_norm = excluded.email_norm""",
                (
                    uid,
                    row.get("firstName"),
                    row.get("lastName"),
                    row["email"],
                    row.get("enabled") or "true",
                    row.get("reportsTo") or None,
                    uid.lower(),
                    row["email"].strip().lower(),
                ),
            )
            (user,) = db.execute(
                "SELECT id FROM users WHERE user_id_norm = ?", (uid.lower(),)
            ).fetchone()
            db.execute("DELETE FROM user_roles WHERE user = ?", (user,))
            for name in filter(None, (r.strip() for r in row.get("roles", "").split("|"))):
                key = name.lower()
                if key not in roles:
                    db.execute(
                        "INSERT OR IGNORE INTO roles (name, name_norm) VALUES (?, ?)",
                        (name, key),
                    )
                    (roles[key],) = db.execute(
                        "SELECT id FROM roles WHERE name_norm = ?", (key,)
                    ).fetchone()
                db.execute(
                    "INSERT OR IGNORE INTO user_roles (user, role) VALUES (?, ?)",
                    (user, roles[key]),
                )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
