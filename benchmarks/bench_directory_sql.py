"""How fast a change of the directory database reaches another process: median and worst, per backend.

Run on demand (never by the test suite)::

    python benchmarks/bench_directory_sql.py [--changes 30] [--poll 1.0] [--postgres postgresql://...]

It imports the demo directory (examples/iam.toml) into a SQLite file and into PostgreSQL (a throwaway server on a
free loopback port, as the tests start one, unless ``--postgres`` names a database), then starts a second Python
process that serves the same database (``SQLDirectoryReloader.open`` + ``start()``) and prints the moment each new
revision is in force there. This process commits ``--changes`` changes (a tag of alice, through
``SQLDirectory.change()``) at random moments and measures, on the machine's monotonic clock, from the end of each
commit to that moment in the other process. Three ways are timed: PostgreSQL with LISTEN/NOTIFY, PostgreSQL
polling only, and SQLite (polling, every ``--poll`` seconds).
"""

from __future__ import annotations

import argparse
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from iam_middleware.directory.sql import SQLDirectory, SQLDirectoryReloader  # noqa: E402


def follow(url: str, poll: float, listen: bool) -> None:
    """The other process: serve the database and print ``revision monotonic-time`` as each one is swapped in."""
    reloader = SQLDirectoryReloader.open(SQLDirectory(url), poll_interval=poll, listen=listen)
    swap = reloader.iam.swap

    def timed(snapshot: object) -> None:
        swap(snapshot)  # type: ignore[arg-type]
        print(f"{snapshot.version} {time.monotonic()}", flush=True)  # type: ignore[attr-defined]

    reloader.iam.swap = timed  # type: ignore[method-assign]
    reloader.start()
    if listen:
        reloader.wait_listening(10)
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes it
    reloader.stop()


def measure(url: str, changes: int, poll: float, listen: bool) -> list[float]:
    directory = SQLDirectory(url)
    child = subprocess.Popen([sys.executable, __file__, "--follow", url, "--poll", str(poll)]
                             + ([] if listen else ["--no-listen"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdin is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()  # type: ignore[union-attr]
    if lines.get(timeout=30).strip() != "ready":
        raise SystemExit("the follower did not start")
    delays = []
    try:
        for i in range(changes):
            time.sleep(random.uniform(0.05, 0.3))
            with directory.change() as draft:
                draft.tag_user("alice", {"team": f"t{i}"})
            committed = time.monotonic()
            revision = directory.revision()
            while True:
                version, seen = lines.get(timeout=poll + 10).split()
                if int(version) == revision:
                    break
            delays.append(float(seen) - committed)
    finally:
        child.stdin.close()
        child.wait(10)
        directory.close()
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--poll", type=float, default=1.0, help="the followers' poll_interval (default 1 s)")
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database (default: start a server)")
    parser.add_argument("--follow", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--no-listen", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        follow(args.follow, args.poll, not args.no_listen)
        return 0
    server = None
    with tempfile.TemporaryDirectory() as scratch:
        postgres = args.postgres
        if postgres is None:
            from _postgres_server import PostgresServer, postgres_bin
            from _redis_server import free_port

            bin_dir = postgres_bin()
            if bin_dir is None:
                raise SystemExit("PostgreSQL is not installed (apt-get install postgresql); or give --postgres URL")
            server = PostgresServer(bin_dir, free_port())
            server.start()
            postgres = server.create_database()
        try:
            runs = [("PostgreSQL, LISTEN/NOTIFY", postgres, True),
                    ("PostgreSQL, polling only", postgres, False),
                    ("SQLite, polling", f"sqlite:///{Path(scratch) / 'iam.db'}", False)]
            print(f"{args.changes} changes each, poll_interval {args.poll:g} s; from the end of the commit to the "
                  "new snapshot in force in the other process")
            for label, url, listen in runs:
                SQLDirectory(url).import_file(ROOT / "examples" / "iam.toml")
                delays = measure(url, args.changes, args.poll, listen)
                print(f"{label:28} median {statistics.median(delays) * 1000:8.1f} ms   worst "
                      f"{max(delays) * 1000:8.1f} ms")
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
