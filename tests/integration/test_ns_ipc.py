"""IPC namespace: System V IPC objects and POSIX message queues are separate per container."""

import ctypes
import os
import secrets

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
NO_IPC_NAMESPACE = ("pid", "mount", "uts", "network")
LIST_SHM_KEYS = "tail -n +2 /proc/sysvipc/shm | awk '{print $1}'"

_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def host_shm_key():
    """A System V shared memory segment made on the host (shmget(2)); its key, removed afterwards."""
    for _ in range(10):
        key = secrets.randbelow(2**31 - 2) + 1
        shmid = _libc.shmget(ctypes.c_int(key), ctypes.c_size_t(4096), ctypes.c_int(IPC_CREAT | IPC_EXCL | 0o600))
        if shmid >= 0:
            break
    else:
        raise OSError(ctypes.get_errno(), f"shmget: {os.strerror(ctypes.get_errno())}")
    try:
        yield key
    finally:
        assert _libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(IPC_RMID), None) == 0


def test_host_shared_memory_is_invisible_inside(box, host_shm_key):
    with open("/proc/sysvipc/shm") as f:
        assert str(host_shm_key) in f.read().split()  # the host does see it
    result = box(LIST_SHM_KEYS)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # a fresh IPC namespace has no segments at all


def test_without_an_ipc_namespace_host_shared_memory_is_visible(box, host_shm_key):
    """The control: the same probe finds the segment when the container shares the host's IPC."""
    result = box(LIST_SHM_KEYS, namespaces=NO_IPC_NAMESPACE)
    assert result.exit_code == 0, result.stderr
    assert str(host_shm_key) in result.stdout.split()


def test_a_message_queue_made_in_one_container_is_invisible_in_another(running, finish, box):
    queue = f"q-{secrets.token_hex(4)}"
    # Creating a file in the mqueue filesystem creates a POSIX message queue (mq_overview(7)).
    with running(f"touch /dev/mqueue/{queue} && echo ready; read x; echo bye") as first:
        assert os.listdir(f"/proc/{first.pid}/root/dev/mqueue") == [queue]  # it exists, in the first one
        other = box("ls /dev/mqueue; echo listed")
        assert (other.exit_code, other.stdout) == (0, "listed\n")
        code, rest = finish(first)
    assert (code, rest) == (0, "bye\n")


def test_the_queue_exists_where_it_was_made(box):
    result = box("touch /dev/mqueue/mine && cat /dev/mqueue/mine")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("QSIZE:0")
