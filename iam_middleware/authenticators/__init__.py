"""Credential verification: bearer JWTs, SigV4 access keys, password + TOTP sessions. Pure and synchronous."""

from __future__ import annotations
