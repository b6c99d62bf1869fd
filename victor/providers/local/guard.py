"""Loading a GGUF model so that llama.cpp cannot take the process (or the kernel) down.

Two guards, both needed:

- **AMX.** A llama.cpp built with AMX (a native build on a Sapphire Rapids or newer Xeon)
  can crash in its AMX matrix multiply (llama.cpp issue 20824: the tile-data permission is
  requested on the main thread only). When llama.cpp's own system info reports
  ``AMX_INT8 = 1``, the model is loaded without llama.cpp's extra buffer types
  (``use_extra_bufts = false``): the weights stay in plain CPU buffers and that path is
  never taken. The decision is logged once at INFO.
- **The first use is tried in a child process.** Crashes nobody knows yet (SIGILL from a
  build made for another CPU, a segfault in a new kernel) would kill the process, and in a
  notebook every variable with it. So the first use of a (llama.cpp build, model file, CPU,
  load settings) is run in a child process that loads the model and generates a few tokens;
  the verdict is cached under ``$VICTOR_HOME/cache/llama-checks``. A crash there becomes a
  ``ConfigurationError`` that names what crashed and the command that rebuilds
  llama-cpp-python portably.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..._machine import cpu_flags, cpu_name
from ..._secrets import get_logger
from ...errors import ConfigurationError
from .build import rebuild_command

__all__ = [
    "build_features",
    "check_first_use",
    "checks_dir",
    "first_use_checked",
    "guard_active",
    "llama_class",
    "needs_amx_guard",
    "system_info",
]

logger = get_logger("victor.providers.local")

#: How long the child may take to load the model and generate (a hang is not a crash).
CHECK_TIMEOUT = 180.0
_FEATURE = re.compile(r"(\w+) = (\w+)")


@functools.lru_cache(maxsize=1)
def system_info() -> str:
    """llama.cpp's own report of the installed build (``CPU : SSE3 = 1 | AVX = 1 | ...``)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode(errors="replace").strip()


def build_features(info: str) -> dict[str, str]:
    """``system_info()`` as a dict: ``{"AVX2": "1", "AMX_INT8": "1", ...}``."""
    return dict(_FEATURE.findall(info))


def needs_amx_guard(features: dict[str, str]) -> bool:
    """Whether the build has llama.cpp's AMX path, which must not be taken."""
    return features.get("AMX_INT8") == "1"


_guard_logged = False


def guard_active() -> bool:
    """Whether models are loaded with the AMX guard in this process (logged once)."""
    global _guard_logged
    active = needs_amx_guard(build_features(system_info()))
    if active and not _guard_logged:
        _guard_logged = True
        logger.info(
            "llama.cpp was built with AMX (system info reports AMX_INT8 = 1), whose matrix "
            "multiply can crash; loading models without extra buffer types "
            "(use_extra_bufts=false) so that path is never taken. A portable build avoids "
            "this: %s",
            rebuild_command(),
        )
    return active


def llama_class(guard: bool) -> type:
    """``llama_cpp.Llama``, or with ``guard`` a subclass that loads models with
    ``use_extra_bufts = false`` (llama-cpp-python has no argument for it)."""
    from llama_cpp import Llama

    if not guard:
        return Llama
    return _guarded_class(Llama)


@functools.lru_cache(maxsize=1)
def _guarded_class(llama: type) -> type:
    class GuardedLlama(llama):  # type: ignore[misc, valid-type]
        """Llama whose model parameters never enable llama.cpp's extra buffer types."""

        # Llama.__init__ assigns self.model_params once, then fills in fields it knows;
        # use_extra_bufts is not one of them, so setting it on assignment sticks.
        @property
        def model_params(self) -> Any:
            return self.__dict__["model_params"]

        @model_params.setter
        def model_params(self, params: Any) -> None:
            if not any(name == "use_extra_bufts" for name, *_ in type(params)._fields_):
                raise ConfigurationError(
                    "this llama-cpp-python cannot turn off llama.cpp's AMX path "
                    f"(no use_extra_bufts): rebuild it portably: {rebuild_command()}"
                )
            params.use_extra_bufts = False
            self.__dict__["model_params"] = params

    return GuardedLlama


# -- the first use, in a child process --------------------------------------------------------


def checks_dir() -> Path:
    """Where the verdicts of first uses are kept."""
    from ...config import victor_home

    return victor_home() / "cache" / "llama-checks"


def first_use_checked(path: Path, load: dict[str, Any]) -> bool:
    """Whether ``check_first_use`` has tried this build, model file, CPU and settings."""
    return _record(path, load).is_file()


def check_first_use(path: Path, load: dict[str, Any]) -> None:
    """Load ``path`` with ``load`` settings and generate in a child process, once per build,
    model file, CPU and settings; raise ``ConfigurationError`` if llama.cpp crashed there."""
    record = _record(path, load)
    if record.is_file():
        return
    spec = {"path": str(path), "load": load}
    try:
        child = subprocess.run(
            _child_command(spec),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            # The child imports victor from wherever this process found it.
            env=os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
    except subprocess.TimeoutExpired:
        logger.warning(
            "trying %s in a child process took over %.0f s; loading it here without the check",
            path,
            CHECK_TIMEOUT,
        )
        return
    if child.returncode < 0:
        raise ConfigurationError(_crash_message(path, -child.returncode, child.stderr))
    if child.returncode != 0:
        # A Python-level failure (say, a file llama.cpp cannot load): loading it here
        # raises the same error, with the usual message.
        logger.debug("llama.cpp check of %s failed: %s", path, child.stderr.strip()[-2000:])
        return
    _write_atomically(record, {"model": str(path), "load": load, "report": child.stdout.strip()})


def _record(path: Path, load: dict[str, Any]) -> Path:
    return checks_dir() / f"{_fingerprint(path, load)}.json"


def _child_command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "victor.providers.local.guard", json.dumps(spec)]


def _crash_message(path: Path, signum: int, stderr: str) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    return (
        f"llama.cpp crashed ({name}) loading and running the model {str(path)!r} with "
        f"llama-cpp-python {_llama_version()} on this CPU ({cpu_name()}). It was tried in a "
        f"child process, so this process is unharmed. This usually means llama-cpp-python "
        f"was built for another CPU, or with a code path this one cannot run; rebuild it "
        f"portably:\n    {rebuild_command()}"
        + (f"\nThe child process said:\n{tail}" if tail else "")
    )


def _fingerprint(path: Path, load: dict[str, Any]) -> str:
    """What decides whether a first use crashes: the build's files, the model file, the
    CPU and the load settings."""
    parts: list[Any] = [_llama_version(), sys.version_info[:2], cpu_name(), sorted(cpu_flags())]
    for file in sorted(_library_files()):
        info = file.stat()
        parts.append((file.name, info.st_size, info.st_mtime_ns))
    model = path.stat()
    parts += [str(path.resolve()), model.st_size, model.st_mtime_ns]
    parts.append(sorted((k, repr(v)) for k, v in load.items()))
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _library_files() -> list[Path]:
    """llama-cpp-python's shared libraries, found without importing (loading) them."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return []
    package = Path(next(iter(spec.submodule_search_locations)))
    return [f for f in package.rglob("*") if f.suffix in (".so", ".dylib", ".dll")]


def _llama_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _write_atomically(file: Path, data: dict[str, Any]) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f".{file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(data, indent=1))
        os.replace(partial, file)
    except OSError as exc:  # an unwritable home only costs a check at the next start
        logger.debug("cannot record the llama.cpp check in %s: %s", file, exc)


def _child(spec: dict[str, Any]) -> None:
    """In the child: what the parent is about to do, on a short prompt."""
    guard = needs_amx_guard(build_features(system_info()))
    print(system_info(), flush=True)  # before anything that may crash
    llama = llama_class(guard)(model_path=spec["path"], **spec["load"])
    try:
        # A prompt of several tokens runs the batched matrix multiply on every thread.
        llama.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
    finally:
        llama.close()
    print(f"ok (AMX guard {'on' if guard else 'off'})", flush=True)


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
