"""What several chapters share: the host's and a container's views, the busybox rootfs,
TextAndHTML (a result that reads well as text and as HTML), the exercise checks' helpers, the
root guard of ``needs-root`` cells (``has_root``) and the predict-then-run box (``Prediction``)."""

from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_int, as_number, not_answered, observe
from teachdock.lab.common.predict import Prediction, Reveal
from teachdock.lab.common.root import has_root, is_root, without_root_sentence
from teachdock.lab.common.views import TextAndHTML, View, busybox_rootfs

__all__ = ["CheckResult", "Prediction", "Reveal", "TextAndHTML", "View", "as_int", "as_number", "busybox_rootfs",
           "has_root", "is_root", "language", "not_answered", "not_answered_yet", "observe", "say",
           "without_root_sentence"]
