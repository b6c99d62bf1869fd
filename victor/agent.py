"""The old path of ``victor.core.agent``, kept so existing imports keep working."""

from .core.agent import *  # noqa: F403
from .core.agent import __all__  # noqa: F401
