"""Build hook: a built wheel carries the demo's directory, policies and app as ``iam_middleware/_demo_data``, so
``iam-middleware demo`` runs from ``pip install iam-middleware[demo]`` with no checkout.

Only for regular wheels: an editable install reads ``examples/`` in place, and a forced file there would create a
real ``iam_middleware`` folder in site-packages that hides the editable package.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DEMO_DATA = {
    "examples/iam.toml": "iam_middleware/_demo_data/iam.toml",
    "examples/policies": "iam_middleware/_demo_data/policies",
    "examples/starlette_app.py": "iam_middleware/_demo_data/starlette_app.py",
}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"].update(DEMO_DATA)
