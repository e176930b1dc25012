"""``--handler module:function``: the user's own callable, rehearsed on every scenario's client."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dropcopy_client.errors import ConfigError


def load_handler(spec: str) -> Callable[[Any], object]:
    """Import ``module:function`` (``function`` may be dotted, e.g. ``app.handlers:Risk.on_event``).

    The callable is registered on each scenario's client as ``client.on_event`` would: it is called with every
    event the client emits (business events, session events, positions), on a delivery thread. Raises
    :class:`~dropcopy_client.errors.ConfigError` saying what to fix when it cannot be imported or is not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise ConfigError(
            f"--handler {spec!r}: expected module:function, for example myapp.dropcopy:on_event"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"--handler {spec!r}: cannot import module {module_name!r} ({exc}); run the command from the "
            "directory that holds it, or add that directory to PYTHONPATH"
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"--handler {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"--handler {spec!r}: module {module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise ConfigError(f"--handler {spec!r}: {attribute!r} is a {type(target).__name__}, not a callable")
    return target  # type: ignore[no-any-return]
