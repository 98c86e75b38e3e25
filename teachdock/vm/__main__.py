"""``python -m teachdock.vm boot [--workload CMD]``: boot the tiny VM and print its figures."""

from __future__ import annotations

import argparse
import sys

from teachdock.errors import TeachdockError
from teachdock.vm.boot_kernel import prepare_kernel
from teachdock.vm.qemu import boot, detect_accel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teachdock.vm",
                                     description="Boot teachdock's tiny VM and measure it.")
    commands = parser.add_subparsers(dest="command", required=True)
    boot_cmd = commands.add_parser("boot", help="boot once, optionally run a shell command inside")
    boot_cmd.add_argument("--workload", help="busybox sh command line to run in the guest")
    boot_cmd.add_argument("--memory", type=int, default=128, help="guest memory in MiB (default 128)")
    boot_cmd.add_argument("--timeout", type=float, default=60, help="seconds before QEMU is killed")
    boot_cmd.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    boot_cmd.add_argument("--console", action="store_true", help="also print the whole console")
    commands.add_parser("info", help="which kernel and accelerator would be used, and why")
    args = parser.parse_args(argv)

    try:
        if args.command == "info":
            kernel = prepare_kernel()
            accel = detect_accel(kernel)
            print(f"kernel       {kernel.path} ({kernel.kind}): {kernel.note}")
            print(f"accelerator  {accel.name}: {accel.reason}")
            return 0
        result = boot(args.workload, memory_mb=args.memory, timeout=args.timeout, accel=args.accel)
    except TeachdockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.console:
        print(result.console.rstrip("\n"))
        print("-" * 40)
    print(result.summary())
    if result.output is not None:
        print("workload output:")
        print(result.output, end="" if result.output.endswith("\n") else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
