"""iam-middleware: AWS IAM's access model for any Python web API."""

from __future__ import annotations

__version__ = "0.1.0"
