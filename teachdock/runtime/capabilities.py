"""Which capabilities a container gets: Docker's defaults, ``--cap-add``, ``--cap-drop``, ``--privileged``.

Read after moby's ``oci/caps`` (``TweakCapabilities``, ``NormalizeLegacyCapabilities``):

- a name is case-insensitive and may leave out ``CAP_`` (``sys_admin`` is ``CAP_SYS_ADMIN``);
  ``ALL`` stands for every capability; an unknown name is refused with dockerd's words;
- ``--privileged`` gives every capability, whatever the add and drop lists say;
- ``--cap-add ALL``: every capability but those dropped; ``--cap-drop ALL``: only those added;
  otherwise the defaults, less the dropped, plus the added (so ``--cap-add X --cap-drop X``
  keeps X when it is a default and adds it when it is not).

"Every capability" is every one this kernel knows (``/proc/sys/kernel/cap_last_cap``) that the
caller still holds in its bounding set (``CapBnd`` in ``/proc/self/status``). A machine may run
its container engines without some (this one lacks ``CAP_SYS_RESOURCE``): capset(2) cannot
grant a capability outside the bounding set, so asking for it would make every privileged
container fail to start — dockerd 20.10 does fail here ("unable to apply caps: operation not
permitted"). A capability asked for by name that the machine withholds is refused, saying why.
"""

from __future__ import annotations

from teachdock.errors import InvalidConfig
from teachdock.kernel import CAP_NUMBER, CAPABILITIES, last_capability

ALL = "ALL"


def normalize(names, field: str = "CapAdd") -> list[str]:
    """``["sys_admin", "CAP_chown", "all"]`` -> ``["CAP_SYS_ADMIN", "CAP_CHOWN", "ALL"]``;
    an unknown name raises InvalidConfig in dockerd's words (``invalid CapAdd: unknown capability: "CAP_FOO"``)."""
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidConfig(f"{field} must be a list of capability names such as [\"NET_ADMIN\"]")
    normalized = []
    for name in names:
        name = name.upper()
        if name != ALL and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != ALL and name not in CAP_NUMBER:
            raise InvalidConfig(f'invalid {field}: unknown capability: "{name}"')
        normalized.append(name)
    return normalized


def bounding_set(status_path: str = "/proc/self/status") -> int:
    """The caller's bounding set as a bit mask (the ``CapBnd`` line of /proc/self/status)."""
    with open(status_path) as status:
        for line in status:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    raise InvalidConfig(f"{status_path} has no CapBnd line")


def available(bounding: int | None = None) -> list[str]:
    """Every capability this kernel knows and the caller may still grant, in number order."""
    bounding = bounding_set() if bounding is None else bounding
    last = min(last_capability(), len(CAPABILITIES) - 1)
    return [name for number, name in enumerate(CAPABILITIES[:last + 1]) if bounding >> number & 1]


def tweak(defaults, add=None, drop=None, *, privileged: bool = False, all_capabilities=None) -> list[str]:
    """The container's capabilities from ``defaults`` and the add/drop lists, in moby's order.

    ``all_capabilities``: what "every capability" means here (:func:`available` when None).
    """
    adds, drops = normalize(add, "CapAdd"), normalize(drop, "CapDrop")
    if not privileged and not adds and not drops:
        return list(defaults)
    every = available() if all_capabilities is None else list(all_capabilities)
    if privileged:
        return every
    if ALL in adds:
        chosen = [name for name in every if name not in drops]
    elif ALL in drops:
        chosen = [name for name in adds if name != ALL]
    else:
        chosen = [name for name in defaults if name not in drops] + adds
    missing = [name for name in chosen if name not in every]
    if missing:
        raise InvalidConfig(f"capability {missing[0]} cannot be granted: it is not in this machine's bounding set "
                            "(CapBnd in /proc/self/status), so capset(2) would refuse it")
    return list(dict.fromkeys(chosen))  # each once, in the order chosen
