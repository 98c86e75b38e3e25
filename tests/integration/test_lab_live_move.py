"""The chapter's live move between two daemons of its own: on this host, where criu check fails,
it says why before creating anything (the real move runs in the VM: tests/vm/test_criu_vm.py)."""

import pytest

from teachdock.client import Client
from teachdock.lab.applications import live_move
from teachdock.lab.client_and_daemon.daemon_lab import LabDaemons
from teachdock.runtime.checkpoint import CriuUnavailable

pytestmark = [pytest.mark.root]

REASON = live_move.why_criu_cannot_run()


@pytest.mark.skipif(REASON is None, reason="criu check passes here: the refusal cannot be shown")
def test_the_move_says_why_criu_cannot_run_and_creates_nothing(tmp_path):
    assert "criu" in REASON
    with LabDaemons(tmp_path / "daemons") as daemons:
        a, b = (Client(daemons.start(name).host) for name in ("a", "b"))
        with pytest.raises(CriuUnavailable) as refusal:
            live_move.move_counter(a, b, tmp_path / "checkpoints")
        assert str(refusal.value) == REASON
        assert a.containers(all=True) == [] and b.containers(all=True) == []
        assert not (tmp_path / "checkpoints").exists()
    assert daemons.leftovers() == []
