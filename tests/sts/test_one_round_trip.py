"""A request signed with temporary (ASIA) credentials reads their record from shared state once: with Redis, one
round trip per request, not one to verify the signature and another to build the principal."""

from __future__ import annotations

from iam_middleware.state import MemoryStore

from ._support import Client, Clock, code, credentials_of, make_iam, signed_view


class CountingStore(MemoryStore):
    """The in-memory store, counting the reads of each key."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[str, int] = {}

    def get(self, key: str) -> bytes | None:
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().get(key)


def test_a_temporary_credential_is_read_once_per_request(clock: Clock) -> None:
    store = CountingStore()
    iam = make_iam(clock, store=store)
    key = credentials_of(Client(iam).signed("/GetSessionToken", {"code": code(iam, "alice", clock.now)}))
    store.reads.clear()
    principal = iam.authenticate(signed_view("GET", "https://api.example/orders", key=key))
    assert principal is not None and principal.access_key_id == key[0]
    record_reads = {name: count for name, count in store.reads.items() if key[0] in name}
    assert list(record_reads.values()) == [1], record_reads
