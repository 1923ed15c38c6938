"""Microseconds per JWT verification: JWTVerifier (cold and cached) next to pyjwt's own ``jwt.decode``.

Run on demand: ``python benchmarks/bench_jwt.py [--repeat N]``. Every figure is the best of N rounds of many
calls (time.perf_counter), and every ratio is against a baseline measured in the same run.
Targets: a warm (cached) verify at most 2 µs; a cold HS256 verify at most 1.2x pyjwt's HS256 decode.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from iam_middleware.authenticators._jwks import JWTKey
from iam_middleware.authenticators._jwt import JWTVerifier, TrustedIssuer

ISS = "https://issuer.example"
AUD = "api://orders"
SECRET = b"0123456789abcdef0123456789abcdef"


def best_us(cases: list[tuple[str, Callable[[], object], int]], *, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` mean time of one call per case, in microseconds.

    Rounds are interleaved (every case once per round) so that load from other processes hits all cases alike.
    """
    for _, call, number in cases:  # warm up caches
        for _ in range(number // 10):
            call()
    best = dict.fromkeys((name for name, _, _ in cases), float("inf"))
    for _ in range(repeat):
        for name, call, number in cases:
            start = time.perf_counter()
            for _ in range(number):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / number * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds per figure; the best is kept")
    args = parser.parse_args()

    now = time.time()
    claims = {"iss": ISS, "aud": AUD, "sub": "user-1", "exp": int(now) + 3600, "iat": int(now), "jti": "t-1"}
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_token = jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "h1"})
    rs_token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "r1"})

    keys = (JWTKey("h1", ("HS256",), SECRET), JWTKey("r1", ("RS256",), pem))
    issuer = TrustedIssuer(ISS, (AUD,), keys=keys)
    cold = JWTVerifier([issuer], cache_size=0)
    warm = JWTVerifier([issuer])
    warm.verify(hs_token, now=now)

    def pyjwt_hs() -> object:
        return jwt.decode(hs_token, SECRET, algorithms=["HS256"], audience=AUD, issuer=ISS)

    def pyjwt_rs() -> object:
        return jwt.decode(rs_token, public, algorithms=["RS256"], audience=AUD, issuer=ISS)

    cases: list[tuple[str, Callable[[], object], int]] = [
        ("pyjwt jwt.decode HS256 (baseline)", pyjwt_hs, 20_000),
        ("pyjwt jwt.decode RS256 (baseline)", pyjwt_rs, 3_000),
        ("JWTVerifier HS256 cold (cache off)", lambda: cold.verify(hs_token, now=now), 20_000),
        ("JWTVerifier HS256 warm (cached)", lambda: warm.verify(hs_token, now=now), 500_000),
        ("JWTVerifier RS256 cold (cache off)", lambda: cold.verify(rs_token, now=now), 3_000),
    ]
    figures = best_us(cases, repeat=args.repeat)
    base_hs, base_rs = figures[cases[0][0]], figures[cases[1][0]]

    print(f"{'case':<38} {'µs/verify':>10} {'x pyjwt HS256':>14} {'x pyjwt RS256':>14}")
    for name, _, _ in cases:
        us = figures[name]
        print(f"{name:<38} {us:>10.2f} {us / base_hs:>14.3f} {us / base_rs:>14.3f}")

    warm_us, cold_hs_ratio = figures[cases[3][0]], figures[cases[2][0]] / base_hs
    print()
    print(f"target warm <= 2 µs:               {warm_us:.2f} µs  {'PASS' if warm_us <= 2 else 'FAIL'}")
    print(f"target cold HS256 <= 1.2x pyjwt:   {cold_hs_ratio:.3f}x  {'PASS' if cold_hs_ratio <= 1.2 else 'FAIL'}")


if __name__ == "__main__":
    main()
