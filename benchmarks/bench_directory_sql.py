"""How fast a change of the directory database reaches another process: median and worst, per backend.

Run on demand (never by the test suite)::

    python benchmarks/bench_directory_sql.py [--changes 30] [--poll 1.0] [--postgres postgresql://...]

It imports the demo directory (examples/iam.toml) into a SQLite file and into PostgreSQL (a throwaway server on a
free loopback port, as the tests start one, unless ``--postgres`` names a database), then starts a second Python
process that serves the same database (``SQLDirectoryReloader.open`` + ``start()``) and prints the moment each new
revision is in force there. This process commits ``--changes`` changes (a tag of alice, through
``SQLDirectory.change()``) at random moments and measures, on the machine's monotonic clock, from the end of each
commit to that moment in the other process. Five ways are timed: PostgreSQL with LISTEN/NOTIFY, PostgreSQL
polling only, SQLite (polling, every ``--poll`` seconds), and SQLite and PostgreSQL without LISTEN with a Redis
(a throwaway redis-server) as the shared state, whose announcement wakes the other process.

``--users 100000`` then bulk-loads that many users (each with an access key, a group and a tag) into PostgreSQL
and reports: the whole load, a writer's first change (read and validated whole), a ``create_user`` +
``create_access_key`` through ``change()`` validated by what it touches and the same read and validated whole (as
every change was before), the time until another process serves it (eager, LISTEN), the incremental refresh of a
change in another process, the memory of a process holding every user and of one loading them on demand
(``users="lazy"``), and the first and second look-up of a user's access key there (with the queries counted).
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from iam_middleware.directory.sql import DirectoryDraft, SQLDirectory, SQLDirectoryReloader  # noqa: E402


def _store(redis_url: str | None) -> object:
    if redis_url is None:
        return None
    from iam_middleware.state import RedisStore

    return RedisStore(redis_url)


def follow(url: str, poll: float, listen: bool, redis_url: str | None = None) -> None:
    """The other process: serve the database and print ``revision monotonic-time`` as each one is swapped in."""
    reloader = SQLDirectoryReloader.open(SQLDirectory(url), poll_interval=poll, listen=listen,
                                         store=_store(redis_url))  # type: ignore[arg-type]
    swap = reloader.iam.snapshots.swap

    def timed(snapshot: object) -> None:
        swap(snapshot)  # type: ignore[arg-type]
        print(f"{snapshot.version} {time.monotonic()}", flush=True)  # type: ignore[attr-defined]

    reloader.iam.snapshots.swap = timed  # type: ignore[method-assign]
    reloader.start()
    if listen:
        reloader.wait_listening(10)
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes it
    reloader.stop()


def _tag_alice(draft: DirectoryDraft, i: int) -> None:
    draft.tag_user("alice", {"team": f"t{i}"})


def measure(url: str, changes: int, poll: float, listen: bool, redis_url: str | None = None, *,
            writer: SQLDirectory | None = None, act: Callable[[DirectoryDraft, int], None] = _tag_alice,
            ready_timeout: float = 30) -> list[float]:
    """Commit ``changes`` changes (``act``; through ``writer``, else a new ``SQLDirectory``) and time each from the
    end of its commit to the new snapshot in force in another process."""
    directory = writer if writer is not None else SQLDirectory(url)
    # With Redis, this process serves the directory too: its reloader announces each commit there.
    announcer = (SQLDirectoryReloader.open(directory, store=_store(redis_url),  # type: ignore[arg-type]
                                           poll_interval=3600, listen=False) if redis_url else None)
    child = subprocess.Popen([sys.executable, __file__, "--follow", url, "--poll", str(poll)]
                             + ([] if listen else ["--no-listen"]) + (["--redis", redis_url] if redis_url else []),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    lines: queue.Queue[str] = queue.Queue()
    output = child.stdout

    def relay() -> None:
        for line in output:
            lines.put(line)

    threading.Thread(target=relay, daemon=True).start()
    if lines.get(timeout=ready_timeout).strip() != "ready":
        raise SystemExit("the follower did not start")
    delays = []
    try:
        for i in range(changes):
            time.sleep(random.uniform(0.05, 0.3))
            with directory.change() as draft:
                act(draft, i)
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
        if announcer is not None:
            announcer.stop()
        if writer is None:
            directory.close()
    return delays


def bulk_load(url: str, count: int) -> list[tuple[str, str]]:
    """The demo directory plus ``count`` users (an access key, the readers group, a tag each), inserted directly;
    returns each user's (name, access key id)."""
    from sqlalchemy import insert

    from iam_middleware.directory._snapshot import stable_id
    from iam_middleware.directory.sql import _schema as t
    from iam_middleware.directory.sql._records import bump_revision

    directory = SQLDirectory(url)
    directory.import_file(ROOT / "examples" / "iam.toml")
    account, now = "111122223333", int(time.time())
    made = []
    with directory.engine.begin() as connection:
        for start in range(0, count, 10_000):
            users, keys, members, tags = [], [], [], []
            for n in range(start, min(count, start + 10_000)):
                name, key = f"u{n:06d}", f"AKIABENCH{n:011d}"
                unique = stable_id("AIDA", f"arn:app:iam::{account}:user/{name}")
                users.append({"id": unique, "account_id": account, "name": name, "path": "/", "active": True,
                              "password_hash": None, "totp_secret": None, "boundary_policy": None,
                              "boundary_document": None, "created": now, "password_changed": None})
                keys.append({"id": key, "user_id": unique, "ordinal": 0, "secret": f"bench/{n}/secret-value-0123",
                             "active": True, "created": now})
                members.append({"user_id": unique, "ordinal": 0, "group_name": "readers"})
                tags.append({"owner_kind": "user", "owner": unique, "key": "team", "value": f"t{n % 50}"})
                made.append((name, key))
            for table, rows in ((t.users, users), (t.access_keys, keys), (t.group_members, members),
                                (t.tags, tags)):
                connection.execute(insert(table), rows)
        bump_revision(connection)  # written past change(): the first load of every process reads it whole
    directory.close()
    return made


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(url: str, users: str, keys: list[str]) -> None:
    """Another process: open the directory (eager or lazy), look up ``keys``, print its resident memory."""
    import gc

    before = rss_mb()
    reloader = SQLDirectoryReloader.open(SQLDirectory(url), users=users, poll_interval=3600)  # type: ignore[arg-type]
    for key in keys:
        assert reloader.iam.snapshot.access_key(key) is not None
    gc.collect()
    print(f"{rss_mb() - before:.1f}", flush=True)


def scale(url: str, count: int) -> None:
    """The 100,000-user figures (see the module's docstring)."""
    from sqlalchemy import event

    started = time.perf_counter()
    made = bulk_load(url, count)
    print(f"\n{count} users in PostgreSQL (bulk insert {time.perf_counter() - started:.1f} s)")
    directory = SQLDirectory(url)
    started = time.perf_counter()
    loaded = directory.load()
    print(f"  whole load (read + validate every user)        {time.perf_counter() - started:8.2f} s")
    eager = SQLDirectoryReloader(directory.iam(), SQLDirectory(url), poll_interval=3600, listen=False)
    del loaded
    writer = SQLDirectory(url)
    started = time.perf_counter()
    with writer.change() as draft:  # the log starts here: the bulk insert wrote none
        draft.tag_user("u000001", {"team": "warm-up"})
    assert writer.last_check == "whole", writer.last_check
    print(f"  the first change of a writer (reads, validates whole) {time.perf_counter() - started:8.2f} s")
    eager.reload()

    def create(draft: DirectoryDraft, i: int) -> None:
        draft.create_user(f"new{i:04d}")
        draft.create_access_key(f"new{i:04d}")

    timings = []
    for i in range(5):
        started = time.perf_counter()
        with writer.change() as draft:
            create(draft, i)
        timings.append(time.perf_counter() - started)
        assert writer.last_check == "incremental", writer.last_check
    print(f"  create_user + create_access_key through change(), by what it touches "
          f"{statistics.median(timings) * 1000:8.1f} ms median, {max(timings) * 1000:.1f} ms worst of 5")
    writer._state = None  # what every change did before: read the whole directory, validate it whole
    started = time.perf_counter()
    with writer.change() as draft:
        create(draft, 5)
    assert writer.last_check == "whole", writer.last_check
    print(f"  the same, read and validated whole (as before)  {time.perf_counter() - started:8.2f} s")
    delays = measure(url, 5, 1.0, True, writer=writer, act=lambda draft, i: create(draft, 100 + i),
                     ready_timeout=600)
    print(f"  ... in force in another process (eager, LISTEN)  {statistics.median(delays) * 1000:8.1f} ms median, "
          f"{max(delays) * 1000:.1f} ms worst of 5")
    timings = []
    for i in range(5):
        with writer.change() as draft:
            draft.tag_user(f"u{i + 10:06d}", {"team": "green"})
        started = time.perf_counter()
        result = eager.reload()
        timings.append(time.perf_counter() - started)
        assert result.ok and eager.last_refresh == "incremental", (result, eager.last_refresh)
    print(f"  incremental refresh of one changed user (eager) {statistics.median(timings) * 1000:8.1f} ms median, "
          f"{max(timings) * 1000:.1f} ms worst of 5")
    started = time.perf_counter()
    lazy = SQLDirectoryReloader.open(SQLDirectory(url), users="lazy", poll_interval=3600, listen=False)
    print(f"  lazy open (everything but the users)            {(time.perf_counter() - started) * 1000:8.1f} ms")
    queries: list[str] = []
    event.listen(lazy.directory.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: queries.append(statement) if statement.startswith("SELECT") else None)
    firsts, seconds = [], []
    for _, key in made[1000:1100]:
        started = time.perf_counter()
        assert lazy.iam.snapshot.access_key(key) is not None
        firsts.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert lazy.iam.snapshot.access_key(key) is not None
        seconds.append(time.perf_counter() - started)
    print(f"  lazy: a user's first look-up (one query each: {len(queries) / 100:g})  "
          f"{statistics.median(firsts) * 1000:8.2f} ms median, {max(firsts) * 1000:.2f} ms worst of 100")
    print(f"  lazy: the same look-up again (cached)           {statistics.median(seconds) * 1e6:8.2f} µs median")
    timings = []
    for i in range(5):
        with writer.change() as draft:
            draft.tag_user(f"u{i + 1000:06d}", {"team": "green"})
        started = time.perf_counter()
        lazy.reload()
        timings.append(time.perf_counter() - started)
    print(f"  incremental refresh of one changed user (lazy)  {statistics.median(timings) * 1000:8.1f} ms median")
    keys = [key for _, key in made[:1000]]
    for mode in ("eager", "lazy"):
        out = subprocess.run([sys.executable, __file__, "--memory", url, "--mode", mode], input="\n".join(keys),
                             capture_output=True, text=True, check=True).stdout
        print(f"  memory of a process serving it, {mode:5} (1000 users asked) {float(out):8.1f} MB")
    for closing in (eager, lazy):
        closing.stop()
        closing.directory.close()
    writer.close()
    directory.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--poll", type=float, default=1.0, help="the followers' poll_interval (default 1 s)")
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database (default: start a server)")
    parser.add_argument("--users", type=int, default=0, help="also the scale run with this many users (100000)")
    parser.add_argument("--only-scale", action="store_true", help="skip the propagation runs")
    parser.add_argument("--follow", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--no-listen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--memory", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        follow(args.follow, args.poll, not args.no_listen, args.redis)
        return 0
    if args.memory:
        memory(args.memory, args.mode, sys.stdin.read().split())
        return 0
    from _redis_server import RedisServer, free_port, redis_binary

    server = redis = None
    with tempfile.TemporaryDirectory() as scratch:
        postgres = args.postgres
        if postgres is None:
            from _postgres_server import PostgresServer, postgres_bin

            bin_dir = postgres_bin()
            if bin_dir is None:
                raise SystemExit("PostgreSQL is not installed (apt-get install postgresql); or give --postgres URL")
            server = PostgresServer(bin_dir, free_port())
            server.start()
            postgres = server.create_database()
        try:
            if not args.only_scale:
                redis = RedisServer(redis_binary(), free_port())
                redis.start()
                runs = [("PostgreSQL, LISTEN/NOTIFY", postgres, True, None),
                        ("PostgreSQL, polling only", postgres, False, None),
                        ("SQLite, polling", f"sqlite:///{Path(scratch) / 'iam.db'}", False, None),
                        ("PostgreSQL, Redis (no LISTEN)", postgres, False, redis.url),
                        ("SQLite, Redis", f"sqlite:///{Path(scratch) / 'redis.db'}", False, redis.url)]
                print(f"{args.changes} changes each, poll_interval {args.poll:g} s; from the end of the commit to "
                      "the new snapshot in force in the other process")
                for label, url, listen, redis_url in runs:
                    SQLDirectory(url).import_file(ROOT / "examples" / "iam.toml")
                    delays = measure(url, args.changes, args.poll, listen, redis_url)
                    print(f"{label:30} median {statistics.median(delays) * 1000:8.1f} ms   worst "
                          f"{max(delays) * 1000:8.1f} ms")
            if args.users:
                scale(server.create_database() if server is not None else postgres, args.users)
        finally:
            if redis is not None:
                redis.stop()
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
