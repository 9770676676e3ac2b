"""The install's optional parts, and the commands that need them.

``pip install imgproc`` brings the function's runtime and what every command needs; running the
pipeline on this machine (``up``, ``demo``: moto's server) and drawing the dashboard (matplotlib) are
extras (``setup.cfg``). A command whose extra is missing says so in one line, naming the extra to
install (:class:`MissingExtra`, reported by :mod:`imgproc.boundary`), instead of failing on an import
half-way through.
"""

from __future__ import annotations

import importlib.util

# extra -> the top-level modules it installs that commands import
EXTRAS: dict[str, tuple[str, ...]] = {
    "local": ("moto", "flask", "werkzeug"),
    "dashboard": ("matplotlib",),
}
COMMAND_EXTRAS: dict[str, str] = {"up": "local", "demo": "local", "dashboard": "dashboard"}


class MissingExtra(Exception):
    """A command needs an extra that is not installed: exit status 1 (the environment is wrong)."""

    def __init__(self, extra: str) -> None:
        super().__init__(f"needs the '{extra}' extra: pip install 'imgproc[{extra}]'")
        self.extra = extra


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # an import hook that refuses the module
        return False


def require(extra: str) -> None:
    """Return when every module of ``extra`` can be imported; :class:`MissingExtra` otherwise."""
    if not all(installed(module) for module in EXTRAS[extra]):
        raise MissingExtra(extra)


def extra_providing(module: str | None) -> str | None:
    """The extra that installs top-level module ``module``'s package, if one does."""
    top = (module or "").split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)
