"""The old path of ``victor.core.messages``, kept so existing imports keep working."""

from .core.messages import *  # noqa: F403
from .core.messages import __all__  # noqa: F401
