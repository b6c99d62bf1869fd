"""``%victor cassette FILE``: the rest of a notebook records once, then replays (in a real
IPython shell; cells run on victor's private loop thread, so the cassette is process-wide)."""

from __future__ import annotations

import json

from tests.servers import Text
from tests.test_cassette import no_connections
from tests.test_magics import ip, run, shell  # noqa: F401 - fixtures

__all__ = ["ip", "shell"]


def test_the_rest_of_the_notebook_records_then_replays(ip, ollama_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("CI", raising=False)  # the default mode is once, as on a laptop
    path, url = tmp_path / "notebook.json", ollama_server.url
    ollama_server.script(Text("Recorded answer"), Text("Second answer"))
    run(ip, f"%victor config provider=ollama base_url={url}")
    result, captured = run(ip, f"%victor cassette {path}")
    assert result.success, result.error_in_exec
    assert f"cassette {path} (record='once'): recording new requests" in captured.stdout
    assert run(ip, "%%victor -o first\nFirst question")[0].success
    assert run(ip, "%%victor -o second\nSecond question")[0].success
    assert (ip.user_ns["first"], ip.user_ns["second"]) == ("Recorded answer", "Second answer")
    assert len(json.loads(path.read_text())["interactions"]) == 2  # written as it goes
    run(ip, "%victor cassette off")
    ollama_server.stop()

    run(ip, "%victor reset")
    with no_connections():
        result, captured = run(ip, f"%victor cassette {path} --record none")
        assert "(record='none'): replaying 2 recording(s), no live requests" in captured.stdout
        assert run(ip, "%%victor -o again\nFirst question")[0].success
        assert ip.user_ns["again"] == "Recorded answer"
        result, captured = run(ip, "%%victor\nA changed question")
        assert not result.success
        assert type(result.error_in_exec).__name__ == "CassetteMiss"
        assert "differs at messages[2].content" in str(result.error_in_exec)
        assert "this run: 'A changed question'" in str(result.error_in_exec)
        run(ip, "%victor cassette off")


def test_ci_replays_only(ip, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CI", "true")
    result, captured = run(ip, f"%victor cassette {tmp_path / 'x.json'}")
    assert "(record='none'): no live requests" in captured.stdout
    run(ip, "%victor cassette off")
