"""One exception hierarchy for the whole engine.

Every error a learner can cause (a bad config, a missing rootfs, an impossible limit)
is a TeachdockError with a message that says what went wrong and what to do about it.
The daemon maps these to Docker-style ``{"message": ...}`` answers; the CLI prints the
message on one line and exits non-zero.
"""


class TeachdockError(Exception):
    """Base class of every error teachdock raises on purpose."""

    #: HTTP status the daemon answers with (Docker's convention).
    status = 500


class KernelError(TeachdockError):
    """A system call failed; carries the errno and the call's name."""

    def __init__(self, call: str, errno: int, message: str):
        super().__init__(message)
        self.call = call
        self.errno = errno


class InvalidConfig(TeachdockError):
    """An OCI config.json (or API arguments turned into one) is malformed or asks for the impossible."""

    status = 400


class NotFound(TeachdockError):
    """A container, bundle, rootfs or image does not exist."""

    status = 404


class Conflict(TeachdockError):
    """The object exists already, or is in a state that forbids the operation."""

    status = 409


class ContainerStartError(TeachdockError):
    """Setting a container up failed inside the container's own processes."""


class CgroupError(TeachdockError):
    """The kernel refused a cgroup operation (a limit it cannot take, a missing controller)."""

    status = 400
