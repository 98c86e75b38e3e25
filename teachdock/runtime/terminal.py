"""Terminals for containers (``docker run -t``): runc's *console socket*.

A terminal is a pair of devices: the program reads and writes the *slave* side as its
stdin, stdout and stderr; whoever shows it to a person (the daemon, then the docker CLI)
holds the *master* side. The pair must come from the container's own ``/dev/pts`` (a
devpts mounted with ``newinstance``), or the program would hold a device it cannot see:
``tty`` would print "not a tty" and ``ps`` would show no terminal.

So, as runc does, the pair is made *inside*, by the container's process once its root
and ``/dev/pts`` are in place, and the master travels back to the caller over a Unix
socket the caller passed in (``console_socket``), as an SCM_RIGHTS message: a file
descriptor sent from one process to another.

```
 caller: socketpair() -> Container.create(console_socket=one end) -> receive_terminal(other end)
 container's process:  open /dev/ptmx -> unlock -> open /dev/pts/N -> setsid, TIOCSCTTY ->
                       slave on fds 0, 1, 2 -> send the master -> (later) execve
```
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import socket
import struct
import termios

from teachdock.errors import ContainerStartError

TIOCGPTN = 0x80045430  # the pty's number N, for /dev/pts/N (not in Python's termios module)
TIOCSPTLCK = 0x40045431  # lock or unlock the slave side (unlockpt(3))


def open_terminal_inside(console_socket: int, uid: int = 0, size: dict | None = None) -> None:
    """In the container (root and /dev/pts in place): make a pty of ``size`` (config.json's
    ``process.consoleSize``: the user's terminal, so the first ``stty size`` is already right),
    make its slave our controlling terminal and our fds 0-2, and send the master to the caller."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        size = size or {}
        set_window_size(master, size.get("height", 0), size.get("width", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
        slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
        if uid:
            os.fchown(slave, uid, -1)  # a non-root program may then reopen it (/dev/tty)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for number in range(3):
            os.dup2(slave, number)
        os.close(slave)
        with socket.socket(fileno=os.dup(console_socket)) as channel:
            channel.sendmsg([b"terminal"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
    finally:
        os.close(master)
        os.close(console_socket)


def receive_terminal(channel: socket.socket, timeout: float = 10.0) -> int:
    """The caller's side: the master fd the container's process sent (see the module doc)."""
    if not select.select([channel], [], [], timeout)[0]:
        raise ContainerStartError("no terminal arrived on the console socket")
    _data, fds, _flags, _address = socket.recv_fds(channel, 16, 1)
    if not fds:
        raise ContainerStartError("the console socket closed without a terminal")
    return fds[0]


def set_window_size(fd: int, height: int, width: int) -> None:
    """TIOCSWINSZ: rows and columns; the kernel then sends SIGWINCH to the program, so a
    shell or an editor redraws at the new size. 0 x 0 leaves the size alone."""
    if height > 0 and width > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
