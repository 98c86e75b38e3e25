"""The checkpoint verbs of the ``teachdock`` CLI, as ``docker checkpoint ...``: create, ls, rm.
Each is one Engine API call (``--help`` names it); ``teachdock start --checkpoint NAME`` restores."""

from __future__ import annotations

import sys

from teachdock.client.commands import Session, table
from teachdock.client.flags import Flag, Verb


def cmd_checkpoint_create(session: Session) -> int:
    container, name = session.args
    o = session.options
    session.client.checkpoint_create(container, name, checkpoint_dir=o.checkpoint_dir,
                                     leave_running=bool(o.leave_running))
    print(name)
    return 0


def cmd_checkpoint_ls(session: Session) -> int:
    names = session.client.checkpoints(session.args[0], checkpoint_dir=session.options.checkpoint_dir)
    sys.stdout.write(table(["CHECKPOINT NAME"], [[name] for name in names]))
    return 0


def cmd_checkpoint_rm(session: Session) -> int:
    container, name = session.args
    session.client.checkpoint_remove(container, name, checkpoint_dir=session.options.checkpoint_dir)
    return 0


DIR_FLAG = Flag("--checkpoint-dir", "a directory of checkpoints of your own (the daemon's path)", value="DIR")
VERBS = {
    "checkpoint create": (Verb("checkpoint create", "CONTAINER CHECKPOINT",
                               "Save a running container's processes with CRIU (it stops, unless --leave-running).",
                               "POST /containers/ID/checkpoints {\"CheckpointID\": NAME, \"Exit\": true}",
                               [DIR_FLAG, Flag("--leave-running", "leave the container running afterwards")],
                               min_args=2, max_args=2), cmd_checkpoint_create),
    "checkpoint ls": (Verb("checkpoint ls", "CONTAINER", "List a container's checkpoints.",
                           "GET /containers/ID/checkpoints[?dir=DIR]", [DIR_FLAG], min_args=1, max_args=1),
                      cmd_checkpoint_ls),
    "checkpoint rm": (Verb("checkpoint rm", "CONTAINER CHECKPOINT", "Remove a checkpoint.",
                           "DELETE /containers/ID/checkpoints/NAME[?dir=DIR]", [DIR_FLAG], min_args=2, max_args=2),
                      cmd_checkpoint_rm),
}
