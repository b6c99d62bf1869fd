"""What live display costs in a real kernel: a 5,000-token reply streamed at full speed
through StreamView, against the same stream consumed without display. Not a test.

    python bench/notebook.py [--tokens 5000] [--rounds 5]

The reply comes from the loopback Anthropic protocol server (its own process, see
serve.py) through the real SDK, into an ipykernel started here. Display messages are
counted on the client side, as a front end receives them. Two paths are measured:

- ``await``: top-level ``await StreamView().consume(agent.events(...))`` on the kernel's loop
  (what ``agent.run(..., display=True)`` does), vs. draining ``agent.events(...)``;
- ``magic``: ``%%victor`` (victor's background loop + main-thread display) vs.
  ``run_sync`` draining the same events.

Targets: at most 12 display messages per second, display/plain time ratio at most 1.10.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel
from serve import serving  # bench/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SETUP = """
%load_ext victor
import json, time
from victor import Agent
from victor.notebook import StreamView, run_sync
agent = Agent(provider="anthropic", model="bench", base_url={url!r}, max_tokens=8192)

async def drain(events):
    async for _ in events:
        pass
"""

# Each snippet prints one JSON line: [wall seconds, kernel CPU seconds], measured inside
# the kernel. CPU time is the steadier figure on a busy machine.
VARIANTS = {
    "await/plain": """
t, c = time.perf_counter(), time.process_time(); await drain(agent.events("go"))
print(json.dumps([time.perf_counter() - t, time.process_time() - c]))
""",
    "await/display": """
t, c = time.perf_counter(), time.process_time(); await StreamView().consume(agent.events("go"))
print(json.dumps([time.perf_counter() - t, time.process_time() - c]))
""",
    "magic/plain": """
t, c = time.perf_counter(), time.process_time(); run_sync(drain(agent.events("go")))
print(json.dumps([time.perf_counter() - t, time.process_time() - c]))
""",
    "magic/display": """
t, c = time.perf_counter(), time.process_time()
get_ipython().run_cell_magic("victor", "--agent agent --new", "go")
print(json.dumps([time.perf_counter() - t, time.process_time() - c]))
""",
}


def execute(kc: Any, code: str) -> tuple[list[float], int]:
    """Run ``code``; return what it printed ([wall s, CPU s]) and the display messages sent."""
    displays = 0
    printed: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        nonlocal displays
        kind = msg["msg_type"]
        if kind in ("display_data", "update_display_data"):
            displays += 1
        elif kind == "stream":
            printed.append(msg["content"]["text"])
        elif kind == "error":
            errors.append("\n".join(msg["content"]["traceback"]))

    kc.execute_interactive(code, output_hook=hook, timeout=120)
    if errors:
        raise RuntimeError(errors[0])
    return json.loads("".join(printed).strip().splitlines()[-1]), displays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=9)
    options = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": str(REPO), "ANTHROPIC_API_KEY": "bench-key"}
    env.pop("VICTOR_STREAM", None)
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    sent: dict[str, list[int]] = {name: [] for name in VARIANTS}
    with serving("anthropic", options.tokens) as url:
        km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(REPO))
        try:
            execute(kc, SETUP.format(url=url) + "\nprint(json.dumps([0, 0]))")
            for code in VARIANTS.values():  # warm up: imports, connections
                execute(kc, code)
            for _ in range(options.rounds):
                for name, code in VARIANTS.items():  # interleaved: drift hits all alike
                    (seconds, cpu_seconds), messages = execute(kc, code)
                    wall[name].append(seconds)
                    cpu[name].append(cpu_seconds)
                    sent[name].append(messages)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)

    median = statistics.median
    print(f"{options.tokens}-token reply at full speed, {options.rounds} rounds, medians")
    header = ("path", "plain s", "display s", "wall ratio", "CPU ratio", "messages", "msg/s")
    header += ("live/s",)
    print("{:<6} {:>8} {:>10} {:>10} {:>9} {:>9} {:>6} {:>7}".format(*header))
    for path in ("await", "magic"):
        plain, shown = median(wall[f"{path}/plain"]), median(wall[f"{path}/display"])
        cpu_ratio = median(cpu[f"{path}/display"]) / median(cpu[f"{path}/plain"])
        rounds = list(zip(sent[f"{path}/display"], wall[f"{path}/display"], strict=True))
        rate = median(n / t for n, t in rounds)
        live = median((n - 1) / t for n, t in rounds)
        print(
            f"{path:<6} {plain:>8.3f} {shown:>10.3f} {shown / plain:>10.3f} {cpu_ratio:>9.3f} "
            f"{max(sent[f'{path}/display']):>9} {rate:>6.1f} {live:>7.1f}"
        )
    print(
        "messages: the most any round sent (first display + updates + final render); msg/s\n"
        "is per round; live/s leaves out the final render. Targets: msg/s <= 12, ratio <= 1.10."
    )


if __name__ == "__main__":
    main()
