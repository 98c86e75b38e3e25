"""Each container's health over time, read the way compose reads it: ``GET /containers/{id}/json``
(inspect) through ``teachdock.client.Client``, every ``interval`` seconds.

``State.Health`` is what the daemon keeps for a container with a health check: ``Status``
(``starting`` until a probe passes, then ``healthy``; ``unhealthy`` after ``retries`` failures
in a row), ``FailingStreak`` and ``Log`` (the last probes, with their exit codes and output).
A container without a health check has no ``Health`` at all.

- ``HealthWatch(client, project="td09")``: ``sample()`` once, ``record(seconds)`` in a loop
  (what tests and a "Run all" use), ``plot()`` a row per container coloured by health;
  ``widget``: Start/Stop, sampling as an asyncio task on the kernel's loop, so Stop always works.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from teachdock.lab.common.language import say

#: The colour of each state in the plot.
COLOURS = {"starting": "#F0E442", "healthy": "#009E73", "unhealthy": "#D55E00", "no health check": "#56B4E9",
           "created": "#DDDDDD", "exited": "#999999", "not running": "#BBBBBB", "gone": "#FFFFFF"}


def shown_status(status: str) -> str:
    """A status as the learner reads it: the API's own words (``healthy``, ``starting``, ``exited``)
    stay as inspect says them; the watch's own words are said in the learner's language."""
    if status == "no health check":
        return say("no health check")
    if status == "not running":
        return say("not running")
    if status == "gone":
        return say("gone")
    return status


@dataclass
class HealthSample:
    """One container's health at one moment (seconds since the watch began)."""

    time: float
    name: str
    status: str                 # a key of COLOURS: a health status, or why there is none
    failing_streak: int = 0
    last_output: str = ""       # the last probe's output (the reason it failed, often)
    last_exit: int | None = None


def health_of(details: dict) -> tuple[str, int, str, int | None]:
    """(status, failing streak, last probe's output, last probe's exit code) from an inspect."""
    state = details.get("State") or {}
    health = state.get("Health")
    if not state.get("Running"):
        status = state.get("Status") if state.get("Status") in ("created", "exited") else "not running"
    elif not health or health.get("Status") in (None, "", "none"):
        status = "no health check"
    else:
        status = health["Status"]
    log = (health or {}).get("Log") or []
    last = log[-1] if log else {}
    return status, int((health or {}).get("FailingStreak") or 0), (last.get("Output") or "").strip(), \
        last.get("ExitCode")


class HealthWatch:
    """Samples the health of a set of containers: those of a compose ``project`` (by the label
    compose puts on them), or those matching ``filters`` (the API's filters, e.g.
    ``{"name": ["web"]}``)."""

    def __init__(self, client, project: str | None = None, filters: dict | None = None, interval: float = 0.5):
        self.client = client
        self.filters = dict(filters or {})
        if project is not None:
            self.filters.setdefault("label", []).append(f"com.docker.compose.project={project}")
        self.interval = interval
        self.samples: list[HealthSample] = []
        self.began = time.monotonic()
        self.task = None
        self._widgets = None

    def sample(self) -> list[HealthSample]:
        """Inspect every matching container once; containers seen before and gone now are
        recorded as ``gone``."""
        now = time.monotonic() - self.began
        found = []
        for summary in self.client.containers(all=True, filters=self.filters):
            name = summary["Names"][0].lstrip("/")
            try:
                details = self.client.inspect(summary["Id"])
            except Exception:  # noqa: BLE001 — removed between the list and the inspect
                continue
            status, streak, output, code = health_of(details)
            found.append(HealthSample(now, name, status, streak, output, code))
        present = {sample.name for sample in found}
        for name in self.names():
            if name not in present and self.latest(name).status != "gone":
                found.append(HealthSample(now, name, "gone"))
        self.samples.extend(found)
        return found

    def record(self, seconds: float, until=None) -> list[HealthSample]:
        """Sample every ``interval`` for ``seconds``, or until ``until()`` is true (and once more)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sample()
            if until is not None and until():
                break
            time.sleep(self.interval)
        self.sample()
        return self.samples

    def names(self) -> list[str]:
        """Containers in the order they were first seen."""
        return list(dict.fromkeys(sample.name for sample in self.samples))

    def latest(self, name: str) -> HealthSample | None:
        return next((s for s in reversed(self.samples) if s.name == name), None)

    def first_time(self, name: str, status: str) -> float | None:
        """When ``name`` was first seen in ``status`` (seconds since the watch began), or None."""
        return next((s.time for s in self.samples if s.name == name and s.status == status), None)

    def changes(self) -> list[HealthSample]:
        """Only the samples where a container's status changed: the story, in order."""
        last: dict[str, str] = {}
        story = []
        for sample in self.samples:
            if last.get(sample.name) != sample.status:
                story.append(sample)
                last[sample.name] = sample.status
        return story

    def story(self) -> str:
        return "\n".join(f"{s.time:6.1f} s  {s.name:<18} {shown_status(s.status)}"
                         + ("  " + say("(failing streak {streak}: {output})", streak=s.failing_streak,
                                       output=repr(s.last_output[:60]))
                            if s.status == "unhealthy" or s.failing_streak else "") for s in self.changes())

    def plot(self, title: str | None = None):
        """One row per container, a coloured bar for each stretch in one state."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        names = self.names()
        fig = Figure(figsize=(10, 1.2 + 0.5 * max(len(names), 1)), layout="constrained")
        ax = fig.subplots()
        end = self.samples[-1].time if self.samples else 0.0
        for row, name in enumerate(reversed(names)):
            mine = [s for s in self.samples if s.name == name]
            for sample, following in zip(mine, mine[1:] + [None]):
                stop = following.time if following is not None else max(end, sample.time + self.interval)
                ax.barh(row, stop - sample.time, left=sample.time, height=0.6,
                        color=COLOURS.get(sample.status, "#777777"), edgecolor="none")
        ax.set_yticks(range(len(names)), list(reversed(names)), fontsize=8)
        ax.set_xlabel(say("seconds since the watch began (this machine)"))
        ax.set_title(title or say("health over time, as inspect reports it"))
        seen = list(dict.fromkeys(s.status for s in self.samples))
        ax.legend(handles=[Patch(color=COLOURS.get(s, "#777777"), label=shown_status(s)) for s in seen],
                  loc="upper left",
                  bbox_to_anchor=(1.0, 1.0), fontsize=7)
        return fig

    # ---- the widget

    @property
    def widget(self):
        """Start / Stop and a picture that redraws after each sample."""
        if self._widgets is None:
            import ipywidgets as widgets

            start = widgets.Button(description=say("Start watching"), icon="play", button_style="success")
            stop = widgets.Button(description=say("Stop watching"), icon="stop", button_style="danger")
            status = widgets.HTML()
            image = widgets.Image(format="png", layout=widgets.Layout(width="760px"))
            start.on_click(lambda _button: self.start())
            stop.on_click(lambda _button: self.stop())
            self._widgets = {"status": status, "image": image,
                             "box": widgets.VBox([widgets.HBox([start, stop, status]), image])}
            self._draw()
        return self._widgets["box"]

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _draw(self) -> None:
        if self._widgets is None:
            return
        buffer = io.BytesIO()
        self.plot().savefig(buffer, format="png", dpi=80)
        self._widgets["image"].value = buffer.getvalue()
        latest = [self.latest(name) for name in self.names()]
        self._widgets["status"].value = (", ".join(f"{s.name}: <b>{shown_status(s.status)}</b>" for s in latest)
                                         or say("no samples yet"))

    def start(self):
        """Sample on the kernel's asyncio loop until ``stop()`` (the inspects run in a thread)."""
        import asyncio

        if self.task is not None and not self.task.done():
            return self.task
        self.task = asyncio.get_event_loop().create_task(self._watch())
        return self.task

    async def _watch(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.sample)
                self._draw()
            except Exception as error:  # noqa: BLE001 — show it, keep watching
                if self._widgets is not None:
                    self._widgets["status"].value = say("could not read: {error}", error=error)
            await asyncio.sleep(self.interval)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None


__all__ = ["COLOURS", "HealthSample", "HealthWatch", "health_of", "shown_status"]
