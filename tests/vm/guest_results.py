"""What a guest pytest run reported, read from the VM's console, for the VM test files that run
one guest file each (test_criu_vm.py, test_devices_vm.py): the guest_report plugin prints one
``TEACHDOCK-TEST {json}`` line per guest test, and each becomes one item on the host."""

import json

import pytest

MARKER = "TEACHDOCK-TEST"


def read_console(console: str, tail_lines: int = 60) -> tuple[dict[str, dict], str]:
    """({guest test name: its record}, the console's last lines without the records)."""
    results = {}
    for line in console.splitlines():
        if line.startswith(f"{MARKER} {{"):
            record = json.loads(line[len(MARKER) + 1:])
            results[record["nodeid"].split("::")[-1]] = record
    tail = "\n".join(line for line in console.splitlines()[-tail_lines:] if not line.startswith(MARKER))
    return results, tail


def check_guest_test(results: dict[str, dict], tail: str, name: str) -> None:
    """Fail (with the guest's traceback and the console's tail) unless guest test ``name`` passed;
    print what it printed."""
    record = results.get(name)
    if record is None:
        pytest.fail(f"the VM reported no result for {name}. Last console lines:\n{tail}", pytrace=False)
    if record.get("stdout"):
        print(record["stdout"], end="")
    if record["outcome"] != "passed":
        pytest.fail(f"in the VM ({record['outcome']}):\n{record['longrepr']}\nLast console lines:\n{tail}",
                    pytrace=False)
