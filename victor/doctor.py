"""``victor doctor``: what this machine can do, and what to do about each problem.

One report for the terminal (``victor doctor``, exit status 1 when the default provider
cannot work) and the notebook (``%victor doctor``): Python and victor; the CPU and the CPUs
this process may use; the llama.cpp build (instruction sets, AMX, the guard), the model
file and its checksum, the thread count, and a first use tried in a child process; each
provider configured or not, reachable or not. Keys are reported as set or unset, never shown.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import importlib.util
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from ._machine import available_cpus, cpu_flags, cpu_name
from .config import _env, settings
from .errors import VictorError

__all__ = ["Check", "Report", "build_checks", "diagnose", "provider_checks"]

#: Seconds to wait for a provider's server to answer.
REACH_TIMEOUT = 3.0
_MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "info": "·"}


@dataclass
class Check:
    """One finding: a status (``ok``, ``warn``, ``fail``, ``info``), what was found, and
    what to do about it."""

    name: str
    status: str
    detail: str
    fix: str | None = None


@dataclass
class Report:
    """Everything ``victor doctor`` found, by section; ``ok`` when the default provider works."""

    sections: dict[str, list[Check]] = field(default_factory=dict)
    default_provider: str = ""
    ok: bool = False

    def add(self, section: str, check: Check) -> Check:
        self.sections.setdefault(section, []).append(check)
        return check

    def __str__(self) -> str:
        lines = ["victor doctor"]
        for title, checks in self.sections.items():
            lines += ["", title]
            for c in checks:
                lines.append(f"  {_MARKS[c.status]} {c.name:<12} {c.detail}")
                if c.fix:
                    lines.append(f"    {'':<12} -> {c.fix}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, **kwargs: object) -> dict[str, str]:
        return {"text/plain": str(self), "text/html": self._html()}

    def _html(self) -> str:
        rows = []
        for title, checks in self.sections.items():
            rows.append(
                f'<tr><th colspan="3" style="text-align:left">{html.escape(title)}</th></tr>'
            )
            for c in checks:
                fix = f"<br><i>→ {html.escape(c.fix)}</i>" if c.fix else ""
                rows.append(
                    f"<tr><td>{_MARKS[c.status]}</td><td><code>{html.escape(c.name)}</code></td>"
                    f"<td style='text-align:left'>{html.escape(c.detail)}{fix}</td></tr>"
                )
        return f"<table>{''.join(rows)}</table>"


async def diagnose(*, network: bool = True) -> Report:
    """Look at this machine and every provider; ``network=False`` skips reaching servers."""
    report = Report(default_provider=settings().provider)
    _system(report)
    local_ok = await asyncio.to_thread(_local_model, report)
    providers = await _providers(report, network=network, local_ok=local_ok)
    default = report.default_provider
    works = providers.get(default)
    report.ok = bool(works)
    untried = works and any(  # --offline: its server was not reached, so say only that
        c.name == default and c.status == "info" for c in report.sections.get("Providers", [])
    )
    if works is None:
        detail, fix = f"{default!r} is not a known provider", "set VICTOR_PROVIDER to one above"
    elif untried:
        detail, fix = f"{default} is configured, not tried (--offline)", None
    elif works:
        detail, fix = f"{default} can work", None
    else:
        detail = f"{default} cannot work (see above)"
        fix = (
            "set VICTOR_PROVIDER=local to use the embedded model"
            if local_ok
            else 'install the embedded model (see "local model") or configure a provider above'
        )
    source = "from VICTOR_PROVIDER" if _env("VICTOR_PROVIDER") else "VICTOR_PROVIDER is unset"
    report.add(
        "Default provider",
        Check(
            default or "?",
            "info" if untried else "ok" if report.ok else "fail",
            f"{detail}; {source}",
            fix,
        ),
    )
    return report


# -- the machine ------------------------------------------------------------------------


def _system(report: Report) -> None:
    section = "System"
    report.add(
        section,
        Check(
            "python",
            "ok",
            f"{platform.python_implementation()} {platform.python_version()}, victor "
            f"{__version__}, {platform.system()} {platform.machine()}",
        ),
    )
    budget = available_cpus()
    flags = cpu_flags()
    features = [name for flag, name in _CPU_FEATURES if flag in flags] or ["(no flags known)"]
    report.add(
        section,
        Check(
            "cpu",
            "ok",
            f"{cpu_name()}; {budget.count} usable CPU(s), from {budget.source}; "
            f"{' '.join(features)}",
        ),
    )


_CPU_FEATURES = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("amx_int8", "AMX"),
    ("asimd", "NEON"),
    ("sve", "SVE"),
)


# -- the local model ----------------------------------------------------------------------


def _local_model(report: Report) -> bool:
    """The llama.cpp build, the model file, threads, and a first use; True if it works."""
    from .providers.local.build import install_command, rebuild_command

    section = 'Local model (provider "local")'
    if importlib.util.find_spec("llama_cpp") is None:
        report.add(
            section,
            Check("llama.cpp", "fail", "llama-cpp-python is not installed", install_command()),
        )
        return False
    build = _build_report()
    if build.returncode < 0:
        report.add(
            section,
            Check("llama.cpp", "fail", f"importing llama_cpp crashes ({build.stderr})",
                  rebuild_command()),
        )  # fmt: skip
        return False
    for check in build_checks(build.stdout):
        report.add(section, check)
    try:
        from .providers.local.provider import LocalProvider

        provider = LocalProvider()
        provider.announce_first_use()
        path = provider.model_file()
    except VictorError as exc:
        report.add(section, Check("model", "fail", str(exc).splitlines()[0], install_command()))
        return False
    report.add(section, Check("model", "ok", _describe_model(path)))
    threads = provider.load_settings["n_threads"]
    report.add(
        section,
        Check("threads", "ok", f"{threads} (from {available_cpus().source}; n_threads= overrides)"),
    )
    try:
        provider.check()
    except VictorError as exc:
        report.add(section, Check("first use", "fail", str(exc).splitlines()[0], rebuild_command()))
        return False
    report.add(section, Check("first use", "ok", "loads and generates (tried in a child process)"))
    return True


def build_checks(info: str) -> list[Check]:
    """What llama.cpp's system info (``info``) says about the build: its instruction sets
    and whether the AMX guard is on. A machine-specific build that got this far works here:
    that is information (it would not run on another CPU), not a problem."""
    from .providers.local.build import rebuild_command
    from .providers.local.guard import build_features, needs_amx_guard

    features = build_features(info)
    sets = [n for n in ("AVX", "AVX2", "FMA", "F16C", "AVX512", "AMX_INT8", "NEON") if
            features.get(n) == "1"]  # fmt: skip
    portable = not ({"AVX512", "AMX_INT8"} & set(sets))
    guard = needs_amx_guard(features)
    return [
        Check(
            "llama.cpp",
            "ok" if portable else "info",
            f"llama-cpp-python {_version('llama-cpp-python')}, "
            f"{'portable' if portable else 'machine-specific'} build: "
            f"{' '.join(sets) or 'baseline'}",
            None if portable else f"for a build that runs on any CPU: {rebuild_command()}",
        ),
        Check(
            "amx guard",
            "info" if guard else "ok",
            "active: models load without llama.cpp's AMX path (use_extra_bufts=false)"
            if guard
            else "not needed: the build has no AMX path",
            rebuild_command() if guard else None,
        ),
    ]


def _build_report() -> subprocess.CompletedProcess[str]:
    """llama.cpp's system info, asked in a child process: a build made for another CPU
    can crash on import, and the doctor must not."""
    return subprocess.run(
        [sys.executable, "-c",
         "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _describe_model(path: Path) -> str:
    from .providers.local.model import bundled_sha256

    size = path.stat().st_size / 1e6
    known = bundled_sha256(path)
    if known is not None:
        return f"{path} ({size:.0f} MB), sha256 {known[:16]}… (verified)"
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return f"{path} ({size:.0f} MB), sha256 {digest.hexdigest()[:16]}…"


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


# -- providers ----------------------------------------------------------------------------


async def _providers(report: Report, *, network: bool, local_ok: bool) -> dict[str, bool]:
    """One line per provider; returns whether each can work."""
    from .providers import available_providers

    section = "Providers"
    works: dict[str, bool] = {"llamacpp": local_ok}
    checks = await provider_checks(network=network)
    for name in available_providers():
        if name == "local":
            detail = "ready, no key needed" if local_ok else "not usable (see above)"
            report.add(section, Check(name, "ok" if local_ok else "fail", detail))
            works[name] = local_ok
        elif name in checks:
            works[name], check = checks[name]
            report.add(section, check)
    return works


async def provider_checks(*, network: bool = True) -> dict[str, tuple[bool, Check]]:
    """Every provider but the embedded model (``victor doctor`` checks that apart): whether
    it can work, and the finding: key set or not (never shown), server reachable or not
    (unless ``network=False``). ``%victor list`` shows these too."""
    from .providers import available_providers, get_provider_class

    names = [n for n in available_providers() if n not in ("local", "llamacpp")]

    async def check(name: str) -> tuple[bool, Check]:
        try:
            return await _provider(name, get_provider_class(name), network)
        except Exception as exc:  # noqa: BLE001 - a broken provider must not hide the others
            return False, Check(name, "fail", f"unavailable ({type(exc).__name__}: {exc})")

    return dict(zip(names, await asyncio.gather(*map(check, names)), strict=True))


async def _provider(name: str, cls: type, network: bool) -> tuple[bool, Check]:
    try:
        provider = cls()
    except VictorError as exc:
        return False, Check(name, "fail", str(exc).splitlines()[0])
    url = provider.base_url
    key_env = cls.api_key_env
    has_key = bool(key_env and _env(key_env))
    if key_env and not has_key:
        fix = f"export {key_env}=... (or pass api_key= to Agent.create)"
        return False, Check(name, "warn", f"not configured: {key_env} is not set", fix)
    configured = f"{key_env} is set" if key_env else "no key needed"
    if provider.in_process or url is None:  # no server to reach
        return True, Check(name, "ok", f"{configured}; runs in this process")
    if not network:
        return True, Check(name, "info", f"{configured}; {url} not tried (--offline)")
    reached, detail = await _reach(name, url)
    if reached:
        return True, Check(name, "ok", f"{configured}; {url} answers{detail}")
    fix = (
        "start it (`ollama serve`) or set OLLAMA_HOST"
        if name == "ollama"
        else f"check the network, or set {cls.base_url_env}"
    )
    return False, Check(name, "fail", f"{configured}; {url} cannot be reached ({detail})", fix)


async def _reach(name: str, url: str | None) -> tuple[bool, str]:
    """Whether a server answers at ``url`` at all (any HTTP status counts)."""
    import httpx

    if not url:
        return False, "no URL"
    probe = url.rstrip("/") + ("/api/tags" if name == "ollama" else "")
    try:
        async with httpx.AsyncClient(timeout=REACH_TIMEOUT) as client:
            response = await client.get(probe)
    except (httpx.HTTPError, VictorError, OSError) as exc:
        return False, type(exc).__name__
    if name == "ollama" and response.status_code == 200:
        try:
            models = [m.get("name", "?") for m in response.json().get("models", [])]
        except ValueError:
            models = []
        return True, f", {len(models)} model(s): {', '.join(models[:5]) or 'none pulled'}"
    return True, ""


def main(network: bool = True) -> int:
    """Print the report; 0 if the default provider can work, else 1."""
    from .cli_output import in_cli_words

    report = asyncio.run(diagnose(network=network))
    print(in_cli_words(str(report)))
    return 0 if report.ok else 1
