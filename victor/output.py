"""The old path of ``victor.core.output``, kept so existing imports keep working."""

from .core.output import *  # noqa: F403
from .core.output import __all__  # noqa: F401
