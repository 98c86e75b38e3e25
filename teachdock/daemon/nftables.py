"""The binding to libnftables' JSON API: the library the `nft` command is a thin shell around.

One call does all the work: ``nft_run_cmd_from_buffer(ctx, text)`` takes a command, here a
JSON document ``{"nftables": [{"add": {"table": ...}}, ...]}``, and applies it to the kernel
in ONE netlink transaction — every rule of the document, or none of them. With the JSON
output flag set, what it prints (``list table ...``) comes back as JSON too. Messages go to
two buffers we read after each call: the output and the error text (`nft`'s own wording).

Why a small ctypes binding and not Debian's ``python3-nftables``: that package is the same
thin ctypes wrapper around the same six functions, but it lives in the system's
``/usr/lib/python3/dist-packages``, outside teachdock's virtualenv (and conda environments),
so importing it would need a ``sys.path`` hack; the library itself (``libnftables1``) is all
we need. A learner can read every call below next to ``man 3 libnftables``.
"""

from __future__ import annotations

import ctypes
import json
import threading

from teachdock.errors import TeachdockError

LIBRARY = "libnftables.so.1"
PACKAGE = "libnftables1"  # the Debian/Ubuntu package that has LIBRARY

# enum nft_output_flags (nftables/libnftables.h)
_OUTPUT_HANDLE = 1 << 3  # print each rule's handle: needed to delete one rule
_OUTPUT_JSON = 1 << 4


class NftablesError(TeachdockError):
    """libnftables refused a command; the message is nft's own."""


class NftablesMissing(NftablesError):
    """There is no libnftables on this machine."""


def _load():
    """Open the library and declare the C signatures we call (man 3 libnftables)."""
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError as error:
        raise NftablesMissing(f"cannot load {LIBRARY} ({error}): install the `{PACKAGE}` package "
                              f"(apt-get install {PACKAGE})") from None
    lib.nft_ctx_new.restype = ctypes.c_void_p                 # struct nft_ctx *nft_ctx_new(uint32_t flags)
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):   # collect text instead of printing it
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int        # 0 on success
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


class Nftables:
    """One libnftables context (what one `nft` process has), used by one thread at a time."""

    def __init__(self, *, json_output: bool = True):
        self._lib = _load()
        self._ctx = self._lib.nft_ctx_new(0)   # 0 = NFT_CTX_DEFAULT
        if not self._ctx:
            raise NftablesError("nft_ctx_new failed")
        self._lib.nft_ctx_output_set_flags(self._ctx, (_OUTPUT_JSON | _OUTPUT_HANDLE) if json_output else 0)
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def run_text(self, command: str) -> str:
        """Run one command in nft's own language (``list table inet teachdock``); its output."""
        with self._lock:
            status = self._lib.nft_run_cmd_from_buffer(self._ctx, command.encode())
            output = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
            error = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if status != 0:
            message = error.strip().removeprefix("internal:0:0-0: ") or f"command failed: {command[:200]}"
            raise NftablesError(f"nft: {message}")
        return output

    def run(self, commands: list[dict]) -> dict:
        """Apply a list of JSON commands (``{"add": {...}}``, ``{"delete": {...}}``) in one transaction."""
        output = self.run_text(json.dumps({"nftables": commands}))
        return json.loads(output) if output.strip() else {}

    def list(self, what: str) -> list[dict]:
        """``list table inet teachdock`` and friends: the objects of the JSON answer, in order."""
        answer = json.loads(self.run_text(f"list {what}") or "{}")
        return [item for item in answer.get("nftables", []) if "metainfo" not in item]

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the library may be gone
            pass


def available() -> bool:
    """Is libnftables on this machine?"""
    try:
        _load()
    except NftablesMissing:
        return False
    return True
