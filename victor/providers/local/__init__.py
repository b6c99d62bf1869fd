"""The embedded model: llama.cpp in this process with a real GGUF model from the package
index (``provider="local"``): the provider, the model file, the portable build of
llama.cpp, the first-use load guard, the shared runtime and the prompts."""

from .provider import LocalProvider, loaded_models

__all__ = ["LocalProvider", "loaded_models"]
