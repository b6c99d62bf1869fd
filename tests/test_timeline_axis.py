"""The widget's time axis (widgets/timeline.js, run in Node): ticks at nice steps, in the
unit the visible span calls for (µs, ms, s, min), and step numbers in deterministic mode.
The static chart once labelled every tick of a fast run "0.00s"."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "widgets" / "timeline.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run the widget's module")


def ticks(t0: float, t1: float, width: int = 800, deterministic: bool = False) -> list[str]:
    code = (
        f"import {{ ticks }} from {json.dumps(JS.as_uri())};"
        f"console.log(JSON.stringify(ticks({t0}, {t1}, {width}, {json.dumps(deterministic)})"
        ".map(t => t.text)))"
    )
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", code], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("t0", "t1", "unit"),
    [
        (0, 4e-5, "µs"),
        (1e-3, 1.2e-3, "µs"),
        (0, 0.05, "ms"),
        (0, 1.5, "ms"),
        (0, 3.2, "s"),
        (10, 70, "s"),
        (0, 600, "min"),
        (0, 7200, "min"),
    ],
)
def test_ticks_are_few_nice_and_in_the_spans_unit(t0, t1, unit):
    labels = ticks(t0, t1)
    assert 3 <= len(labels) <= 10, labels
    assert all(label.endswith(f" {unit}") for label in labels), labels
    values = [float(label.split()[0]) for label in labels]
    assert len(set(labels)) == len(labels)  # never "0.00 s" over and over
    steps = {round(b - a, 9) for a, b in zip(values, values[1:], strict=False)}
    assert len(steps) == 1, labels
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5), labels


def test_deterministic_mode_counts_steps():
    labels = ticks(0, 37, deterministic=True)
    assert labels[0] == "step 0" and all(label.startswith("step ") for label in labels)
    assert all(float(label.split()[1]).is_integer() for label in labels)
    assert ticks(0, 3, width=2000, deterministic=True) == ["step 0", "step 1", "step 2", "step 3"]
