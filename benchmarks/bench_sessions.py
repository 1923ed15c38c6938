"""Cost of session tokens and TOTP checks next to the bare libraries they wrap, measured in one run.

Run: ``python benchmarks/bench_sessions.py``. Each figure is the best of several rounds of many calls, in
microseconds per call, with its ratio to the bare-library baseline of the same operation.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iam_middleware.authenticators._sessions import SESSION_TYP, SessionTokens  # noqa: E402
from iam_middleware.authenticators._totp import TOTPDevice, TOTPVerifier  # noqa: E402
from iam_middleware.state import MemoryStore  # noqa: E402

ROUNDS = 7
CALLS = 2000
NOW = 1_700_000_015.0
ARN = "arn:aws:iam::123456789012:user/alice"
SECRET, OLD_SECRET = b"n" * 32, b"o" * 32
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def best_us(call: Callable[[], object]) -> float:
    """Best-of-ROUNDS mean time per call, in microseconds."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            call()
        best = min(best, (time.perf_counter() - start) / CALLS)
    return best * 1e6


def main() -> None:
    store = MemoryStore()
    sessions = SessionTokens(SECRET, store=store)
    rotated = SessionTokens((SECRET, OLD_SECRET), store=store)
    token = sessions.issue(ARN, now=NOW, mfa_time=NOW).token
    old_token = SessionTokens(OLD_SECRET, store=store).issue(ARN, now=NOW, mfa_time=NOW).token
    claims = jwt.decode(token, options={"verify_signature": False})

    def bare_decode() -> object:
        return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})

    jwt_decode = best_us(bare_decode)
    jwt_encode = best_us(lambda: jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": SESSION_TYP}))

    device = TOTPDevice(SEED)
    otp = pyotp.TOTP(SEED)
    code = device.code_at(NOW)
    users = (f"user{n}" for n in itertools.count())  # a fresh user per call, so every code is first use
    verifier = TOTPVerifier(MemoryStore())
    pyotp_verify = best_us(lambda: otp.verify_and_get_timecode(code, for_time=NOW, valid_window=1))

    rows = [
        ("session verify", best_us(lambda: sessions.verify(token, now=NOW + 1)), "pyjwt decode", jwt_decode),
        (
            "session verify, 2nd of 2 secrets",
            best_us(lambda: rotated.verify(old_token, now=NOW + 1)),
            "pyjwt decode",
            jwt_decode,
        ),
        ("session issue", best_us(lambda: sessions.issue(ARN, now=NOW, mfa_time=NOW)), "pyjwt encode", jwt_encode),
        (
            "TOTP verify (single use)",
            best_us(lambda: verifier.verify(next(users), device, code, now=NOW)),
            "pyotp verify_and_get_timecode",
            pyotp_verify,
        ),
    ]
    print(f"{ROUNDS} rounds x {CALLS} calls, best round; MemoryStore; Python {sys.version.split()[0]}")
    print(f"{'operation':<34} {'us/call':>9}   {'baseline':<30} {'us/call':>9} {'ratio':>7}")
    for name, ours, base_name, base in rows:
        print(f"{name:<34} {ours:>9.1f}   {base_name:<30} {base:>9.1f} {ours / base:>6.2f}x")


if __name__ == "__main__":
    main()
