"""The old path of ``victor.core.hooks``, kept so existing imports keep working."""

from .core.hooks import *  # noqa: F403
from .core.hooks import __all__  # noqa: F401
