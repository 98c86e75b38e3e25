"""The checkpoint calls of :class:`teachdock.client.Client` (dockerd's experimental API).

    client.checkpoint_create("counter", "cp1", leave_running=False)   docker checkpoint create counter cp1
    client.checkpoints("counter")                                      docker checkpoint ls counter
    client.checkpoint_remove("counter", "cp1")                         docker checkpoint rm counter cp1
    client.start("copy", checkpoint="cp1", checkpoint_dir="/srv/ck")  docker start --checkpoint cp1 ...

A daemon where CRIU cannot work answers 501 with criu check's own words (an APIError).
"""

from __future__ import annotations

from teachdock.client.transport import quote


class CheckpointCalls:
    """Mixed into Client: each method is one request through ``self.request``."""

    def checkpoint_create(self, container: str, name: str, *, checkpoint_dir: str | None = None,
                          leave_running: bool = False) -> None:
        """Save the container's processes as checkpoint ``name``; it stops unless ``leave_running``."""
        body = {"CheckpointID": name, "Exit": not leave_running}
        if checkpoint_dir:
            body["CheckpointDir"] = checkpoint_dir
        self.request("POST", f"/containers/{quote(container, safe='')}/checkpoints", body=body)

    def checkpoints(self, container: str, *, checkpoint_dir: str | None = None) -> list[str]:
        """The names of the container's checkpoints (those under ``checkpoint_dir`` when given)."""
        answer = self.request("GET", f"/containers/{quote(container, safe='')}/checkpoints",
                              query={"dir": checkpoint_dir}).json()
        return [entry["Name"] for entry in answer]

    def checkpoint_remove(self, container: str, name: str, *, checkpoint_dir: str | None = None) -> None:
        self.request("DELETE", f"/containers/{quote(container, safe='')}/checkpoints/{quote(name, safe='')}",
                     query={"dir": checkpoint_dir})
