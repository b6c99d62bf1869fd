"""The old path of ``victor.core.state``, kept so existing imports keep working."""

from .core.state import *  # noqa: F403
from .core.state import __all__  # noqa: F401
