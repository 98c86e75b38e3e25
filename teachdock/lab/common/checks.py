"""What every chapter's exercise checks share: the result box, and how to learn the truth.

Each ``check_*`` function starts a real container to learn the true answer, then hands both
to a ``judge_*`` function. The judge is pure (testable without root) and knows the usual
mistakes, so a wrong answer gets a hint about *that* mistake, not just "wrong".

A check never raises for a wrong answer: it returns a CheckResult that Jupyter shows as a
green or red box. That keeps "Run all" going, and keeps the notebook passing under nbval
while its exercise cells still hold the placeholder ``...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from teachdock.lab.common.language import say


@dataclass
class CheckResult:
    passed: bool
    message: str
    answered: bool = True  # False while the exercise cell still holds the placeholder ...

    def _look(self) -> tuple[str, str, str]:
        """(text colour, background, mark): green for right, red for wrong, grey for not yet answered."""
        if not self.answered:
            return "#444444", "#ececec", "✎"
        return ("#00603f", "#d9f2e6", "✔") if self.passed else ("#8f1d1d", "#fbdada", "✘")

    def __repr__(self) -> str:
        return f"{self._look()[2]} {self.message}"

    def _repr_html_(self) -> str:
        colour, background, mark = self._look()
        return (
            f'<div style="background:{background};color:{colour};border-left:6px solid {colour};'
            f'padding:6px 10px"><b>{mark}</b> {escape(self.message)}</div>'
        )


def not_answered(answer) -> bool:
    """The exercise cell still holds its placeholder (``...``)."""
    return answer is ... or answer is None


def as_number(answer) -> float | None:
    """A learner's answer as a number: 3, 2.5, "2.5" and "50 %" all work; anything else is None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, float)):
        return float(answer)
    if isinstance(answer, str):
        try:
            return float(answer.strip().rstrip("%").strip())
        except ValueError:
            return None
    return None


def not_answered_yet() -> CheckResult:
    """The grey box of an exercise cell that still holds its placeholder (made when shown, in the
    learner's language)."""
    return CheckResult(False, say("Replace the ... with your answer, then run the cell again."), answered=False)


def as_int(answer) -> int | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, str) and answer.strip().lstrip("-").isdigit():
        return int(answer.strip())
    return None


def run_in_container(args: list[str], rootfs, **options) -> str:
    """Run a command in a fresh container and return its stdout (imported late: lab sits on top)."""
    from teachdock.runtime import run

    result = run(args, rootfs=str(rootfs), timeout=30, **options)
    if result.exit_code != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {result.exit_code}: {result.stderr.strip()}")
    return result.stdout


def observe(what, rootfs):
    """Learn the truth from a real container; on failure, a CheckResult saying why."""
    try:
        if rootfs is None:
            from teachdock.lab.common.views import busybox_rootfs

            rootfs = busybox_rootfs()
        return what(rootfs), None
    except Exception as error:  # the check must explain, not crash the exercise cell
        import os

        problem = f"{type(error).__name__}: {error}"
        if os.geteuid() != 0:
            return None, CheckResult(False, say(
                "Could not start a container to check your answer ({problem}). Without root, containers run "
                "rootless (a user namespace, no cgroup) where the machine allows it; this check may need more: "
                "run the lab as root, and see the doctor() table of chapter 00 for what this machine lacks.",
                problem=problem))
        return None, CheckResult(False, say(
            "Could not start a container to check your answer ({problem}). See the doctor() table of "
            "chapter 00 for what this machine lacks.", problem=problem))
