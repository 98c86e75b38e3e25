"""What several chapters share: the host's and a container's views, the busybox rootfs,
TextAndHTML (a result that reads well as text and as HTML), and the exercise checks' helpers."""

from teachdock.lab.common.checks import NOT_ANSWERED, CheckResult, as_int, as_number, not_answered, observe
from teachdock.lab.common.views import TextAndHTML, View, busybox_rootfs

__all__ = ["NOT_ANSWERED", "CheckResult", "TextAndHTML", "View", "as_int", "as_number", "busybox_rootfs",
           "not_answered", "observe"]
