"""The old path of ``victor.core.task``, kept so existing imports keep working."""

from .core.task import *  # noqa: F403
from .core.task import __all__  # noqa: F401
