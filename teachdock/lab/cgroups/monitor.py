"""A live cgroup monitor: start a container under limits and watch the kernel enforce them.

Pick a load (a memory hog, a CPU burner or a fork bomb), set the limits with sliders and
press Start. The monitor creates a container with those limits, reads its cgroup ten times
a second and draws three panels as the numbers move:

- memory in use against the memory limit, with the OOM kill marked when it comes;
- CPU in use (in cores) against the CPU quota, with the periods the kernel throttled it;
- processes against the pids limit, with the fork() calls the kernel refused.

When the container ends (by itself, by Stop, or after ``max_seconds``) the monitor shows
its final figures and deletes it.

Why it is built this way:

- Sampling is an asyncio task on the kernel's own event loop, never a ``while`` loop in a
  cell: a running cell blocks the kernel, and the Stop button would do nothing until it ends.
- The plot is a PNG in a ``widgets.Image``, rendered with matplotlib's object API. Setting
  ``Image.value`` is a plain trait update, so it works the same in JupyterLab, in a classic
  notebook and headless under nbval, and needs no extra package (no ipympl).
- The logic that turns samples into curves and figures is made of plain functions
  (``series``, ``cpu_rate``, ``summarize``, ``plot_samples``), testable without a container:
  they live in teachdock.lab.cgroups.samples.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
import weakref
from dataclasses import dataclass, field
from html import escape

import ipywidgets as widgets

from teachdock.errors import Conflict, InvalidConfig, TeachdockError
from teachdock.lab.cgroups.samples import MIB, MonitorPlot, MonitorResult, Sample, Series, load_label, series, summarize
from teachdock.lab.common.language import say
from teachdock.runtime import DEVNULL, PIPE, Container
from teachdock.runtime.spec import parse_memory

#: The loads a learner can pick (their labels: samples.load_label).
LOADS = ("memory", "cpu", "forkbomb")


def load_help(load: str) -> str:
    """What each load does, shown under the buttons."""
    if load == "memory":
        return say("keeps a new copy of a chunk of text in a new shell variable, 20 times a second, until the "
                   "memory limit stops it")
    if load == "cpu":
        return say("a busy loop (while :; do :; done) that would use a whole core if it could")
    return say("every copy starts another copy of itself every 0.2 s, so their number doubles until fork() fails")

#: The hog reaches its limit in about this many steps, whatever the limit (20 steps a second).
HOG_STEPS = 80
#: A backstop for the CPU burner: the kernel kills it after this many CPU seconds
#: (RLIMIT_CPU), should the notebook die without pressing Stop.
CPU_BURNER_MAX_CPU_SECONDS = 300


class MonitorError(TeachdockError):
    """The monitor cannot do what was asked (no event loop, no container yet)."""


# --------------------------------------------------------------------------------------------
# The loads: what runs in the container
# --------------------------------------------------------------------------------------------


def hog_chunk_bytes(memory_limit: int) -> int:
    """How much the memory hog adds per step: the limit in HOG_STEPS steps, a whole number of pages."""
    return max(64 * 1024, memory_limit // HOG_STEPS // 4096 * 4096)


def load_command(load: str, memory_limit: int | None = None) -> list[str]:
    """The busybox command line of a load.

    The memory hog stores one more copy of a chunk in a new variable (v0, v1, v2 ...) at
    every step. The old copies stay, so memory grows in a straight line; doubling a string
    (``x=$x$x``) would grow geometrically and hit any limit within a few frames.
    """
    if load == "memory":
        if memory_limit is None:
            raise InvalidConfig(say("the memory hog needs a memory limit: without one it would eat the host's "
                                    "memory"))
        chunk = hog_chunk_bytes(memory_limit)
        script = (f"c=$(head -c {chunk} /dev/zero | tr '\\0' a); i=0; "
                  'while true; do eval "v$i=\\$c"; i=$((i+1)); sleep 0.05; done')
    elif load == "cpu":
        script = "while :; do :; done"
    elif load == "forkbomb":
        # The function runs in the background; the shell itself becomes a quiet `sleep`, so
        # the container lives on until Stop while the copies come and go.
        script = "f() { while :; do sleep 0.2; f & done; }; f & exec sleep 3600"
    else:
        raise InvalidConfig(say("unknown load {load}: choose one of {loads}", load=repr(load), loads=", ".join(LOADS)))
    return ["sh", "-c", script]


def describe_settings(load: str, memory: int | None, cpus: float | None, pids: int | None) -> str:
    """One line naming the load and its limits, e.g. "memory hog · 32 MiB · 0.5 CPU · pids ≤ 30"."""
    parts = [load_label(load),
             say("no memory limit") if memory is None else f"{memory / MIB:g} MiB",
             say("no CPU quota") if cpus is None else f"{cpus:g} CPU",
             say("no pids limit") if pids is None else f"pids ≤ {pids}"]
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------
# The widget
# --------------------------------------------------------------------------------------------


def _delete_quietly(container: Container) -> None:
    """Last-resort clean-up (widget closed, object collected, interpreter exit)."""
    try:
        container.delete(force=True)
    except TeachdockError:
        pass


@dataclass
class _Run:
    """One started container and what the monitor needs to follow it."""

    load: str
    container: Container
    cgroup: object
    started: float
    settings: str
    cpu_limit: float | None
    finalizer: weakref.finalize
    stop_requested: bool = False
    stderr_lines: list[str] = field(default_factory=list)
    stderr_buffer: bytes = b""


class CgroupMonitor:
    """The live monitor. Show ``.widget`` in a cell; or drive it from code:

    ```python
    monitor = CgroupMonitor()
    monitor.widget                                   # the sliders, buttons and plot
    monitor.start(load="memory", memory="32m")       # or press Start
    result = await monitor.task                      # a MonitorResult when it ends
    monitor.samples                                  # [Sample(t, Metrics), ...]
    ```

    ``memory`` takes what ``Container.create`` takes (bytes, or "32m" where m means MiB);
    ``cpus`` is a number of cores (the quota); ``pids`` the most processes allowed. Left out,
    each comes from its slider. ``max_seconds`` stops a container that runs too long.
    """

    def __init__(self, rootfs=None, *, state_root=None, interval: float = 0.1, max_seconds: float = 30.0):
        self.rootfs = rootfs
        self.state_root = state_root
        self.interval = interval
        self.max_seconds = max_seconds
        self.samples: list[Sample] = []
        self.result: MonitorResult | None = None
        self.task: asyncio.Task | None = None
        self._run: _Run | None = None
        self._plot: MonitorPlot | None = None
        self._starting = False  # start() moves sliders: no preview redraw for that

        style = {"description_width": "140px"}
        wide = widgets.Layout(width="500px")
        self.load_choice = widgets.ToggleButtons(options=[(load_label(key), key) for key in LOADS],
                                                 value="memory", description=say("load"), style=style)
        self.load_help = widgets.HTML()
        self.memory_slider = widgets.IntSlider(value=32, min=8, max=256, step=8,
                                               description=say("memory limit (MiB)"),
                                               continuous_update=False, style=style, layout=wide)
        self.cpus_slider = widgets.FloatSlider(value=0.5, min=0.1, max=float(os.cpu_count() or 1), step=0.1,
                                               description=say("CPU quota (cores)"), readout_format=".1f",
                                               continuous_update=False, style=style, layout=wide)
        self.pids_slider = widgets.IntSlider(value=30, min=4, max=200, description=say("pids limit"),
                                             continuous_update=False, style=style, layout=wide)
        self.start_button = widgets.Button(description=say("Start"), icon="play", button_style="success")
        self.stop_button = widgets.Button(description=say("Stop"), icon="stop", button_style="danger",
                                          disabled=True)
        self.status = widgets.Label(value=say("Choose a load and its limits, then press Start."))
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="684px"))
        self.figures = widgets.HTML()

        self.load_choice.observe(lambda _change: self._show_load_help(), names="value")
        self.start_button.on_click(self._on_start)
        self.stop_button.on_click(lambda _button: self.stop())
        for slider in (self.memory_slider, self.cpus_slider, self.pids_slider):
            slider.observe(self._preview, names="value")
        self._show_load_help()
        self._preview()
        self.widget = MonitorBox(self, [
            self.load_choice, self.load_help, self.memory_slider, self.cpus_slider, self.pids_slider,
            widgets.HBox([self.start_button, self.stop_button, self.status]),
            self.image, self.figures,
        ])

    # --- public API ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def container_id(self) -> str | None:
        """The id of the container being (or last) monitored."""
        if self._run is not None:
            return self._run.container.id
        return self.result.container_id if self.result else None

    def start(self, load: str | None = None, *, memory=None, cpus: float | None = None,
              pids: int | None = None) -> asyncio.Task:
        """Create and start a container running ``load`` under the limits, and start sampling.

        Returns the sampling task: ``await`` it for the MonitorResult. Needs a running asyncio
        loop, which a notebook always has (in a script: call it inside ``asyncio.run``).
        """
        if self.running:
            raise Conflict(say("the monitor is already running a container: press Stop (or call stop()) first"))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise MonitorError(say("start() needs a running asyncio event loop: call it from a notebook cell, "
                                   "or from a coroutine run with asyncio.run()")) from None
        self._starting = True
        try:
            load, memory_bytes, cpus, pids = self._settings(load, memory, cpus, pids)
        finally:
            self._starting = False
        args = load_command(load, memory_bytes)
        rootfs = self.rootfs
        if rootfs is None:
            from teachdock.lab.common.views import busybox_rootfs  # noqa: PLC0415

            rootfs = busybox_rootfs()
        options = {"init": True} if load == "forkbomb" else {}
        if load == "cpu":
            options["rlimits"] = {"RLIMIT_CPU": (CPU_BURNER_MAX_CPU_SECONDS, CPU_BURNER_MAX_CPU_SECONDS)}
        container = Container.create(f"cgmon-{os.getpid()}-{secrets.token_hex(3)}", rootfs=str(rootfs),
                                     args=args, memory=memory_bytes, cpus=cpus, pids_limit=pids,
                                     state_root=self.state_root, stdout=DEVNULL, stderr=PIPE, **options)
        finalizer = weakref.finalize(self, _delete_quietly, container)
        try:
            cgroup = container.cgroup
            container.start()
            run = _Run(load, container, cgroup, time.monotonic(), describe_settings(load, memory_bytes, cpus, pids),
                       cpus, finalizer)
            os.set_blocking(container.stderr, False)
            loop.add_reader(container.stderr, self._read_stderr, run)
        except BaseException:
            finalizer()
            raise
        self._run = run
        self.samples = []
        self.result = None
        self.figures.value = ""
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.status.value = say("running: {settings}", settings=run.settings)
        self.task = loop.create_task(self._sample(run))
        self.task.add_done_callback(self._task_done)
        return self.task

    def stop(self) -> None:
        """Stop: at its next step the sampler kills the container, shows its figures and deletes it.

        A flag rather than ``task.cancel()``: a task cancelled before its first step never runs
        its clean-up code.
        """
        if self._run is not None:
            self._run.stop_requested = True

    def close(self) -> None:
        """Stop, delete the container, and close the widget."""
        self.widget.close()

    # --- settings ----------------------------------------------------------------------------
    def _settings(self, load, memory, cpus, pids):
        """Take the arguments given, move the sliders to them, and fill the rest from the sliders."""
        if load is not None:
            if load not in LOADS:
                raise InvalidConfig(say("unknown load {load}: choose one of {loads}", load=repr(load),
                                        loads=", ".join(LOADS)))
            self.load_choice.value = load
        if memory is not None:
            memory_bytes = parse_memory(memory)
            self._set_slider(self.memory_slider, round(memory_bytes / MIB))
        else:
            memory_bytes = self.memory_slider.value * MIB
        if cpus is not None:
            self._set_slider(self.cpus_slider, cpus)
        else:
            cpus = round(self.cpus_slider.value, 2)
        if pids is not None:
            self._set_slider(self.pids_slider, pids)
        else:
            pids = self.pids_slider.value
        return self.load_choice.value, memory_bytes, cpus, pids

    @staticmethod
    def _set_slider(slider, value) -> None:
        slider.max = max(slider.max, value)
        slider.min = min(slider.min, value)
        slider.value = value

    def _show_load_help(self) -> None:
        self.load_help.value = f"<small style='color:#444'>{escape(load_help(self.load_choice.value))}</small>"

    # --- the sampling task ----------------------------------------------------------------------
    def _on_start(self, _button) -> None:
        try:
            self.start()
        except Exception as error:  # a button has nowhere to raise to: say it in the label
            self.status.value = say("Could not start: {error}", error=error)

    async def _sample(self, run: _Run) -> MonitorResult:
        """Sample about every ``interval`` seconds until the container ends, Stop, or the time limit."""
        stopped, exit_code = False, None
        next_draw = 0.0
        try:
            while True:
                now = time.monotonic()
                self.samples.append(Sample(now - run.started, run.cgroup.metrics()))
                exit_code = _exit_code_if_ended(run.container)
                if exit_code is not None:
                    break
                if run.stop_requested or now - run.started > self.max_seconds:
                    stopped = True
                    break
                if now >= next_draw:
                    cost = self._draw(title=say("{settings} — running, {seconds:.1f} s", settings=run.settings,
                                                seconds=now - run.started), cpu_limit=run.cpu_limit)
                    next_draw = now + max(0.25, 3 * cost)  # never spend more than a quarter of the loop drawing
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - now)))
        except asyncio.CancelledError:
            stopped = True  # someone cancelled the task: clean up all the same, and end normally
        finally:
            self._finish(run, stopped, exit_code)
        return self.result

    def _finish(self, run: _Run, stopped: bool, exit_code: int | None) -> None:
        """Kill if still running, take the last sample, record the figures, delete the container."""
        try:
            if exit_code is None:
                try:
                    run.container.kill(signal.SIGKILL)  # PID 1 dies, and with it its PID namespace
                except Conflict:
                    pass  # it ended by itself meanwhile
                exit_code = run.container.wait(timeout=5)
            self.samples.append(Sample(time.monotonic() - run.started, run.cgroup.metrics()))
            self._read_stderr(run)
            self.result = summarize(run.load, run.container.id, self.samples, exit_code=exit_code,
                                    oom_killed=run.container.oom_killed, stopped=stopped, cpu_limit=run.cpu_limit,
                                    stderr_tail=run.stderr_lines[-1] if run.stderr_lines else "")
        finally:
            try:
                asyncio.get_running_loop().remove_reader(run.container.stderr)
            except (RuntimeError, ValueError, TypeError):
                pass
            run.finalizer()  # delete(force=True), once
            self._run = None
            self.start_button.disabled, self.stop_button.disabled = False, True
        r = self.result
        if r.oom_killed:
            title = say("{settings} — OOM-killed after {seconds:.1f} s (exit {code})", settings=run.settings,
                        seconds=r.duration, code=r.exit_code)
            status = say("OOM-killed, exit code {code}; container deleted. Press Start for another run.",
                         code=r.exit_code)
        elif r.stopped:
            title = say("{settings} — stopped after {seconds:.1f} s (exit {code})", settings=run.settings,
                        seconds=r.duration, code=r.exit_code)
            status = say("stopped, exit code {code}; container deleted. Press Start for another run.",
                         code=r.exit_code)
        else:
            title = say("{settings} — exited after {seconds:.1f} s (exit {code})", settings=run.settings,
                        seconds=r.duration, code=r.exit_code)
            status = say("exited, exit code {code}; container deleted. Press Start for another run.",
                         code=r.exit_code)
        self._draw(title=title, cpu_limit=run.cpu_limit)
        self.figures.value = r._repr_html_()
        self.status.value = status

    def _task_done(self, task: asyncio.Task) -> None:
        """Report a sampler that died of an error: a task's exception is otherwise silent."""
        if task.cancelled():  # cancelled before its first step: _sample never ran its clean-up
            if self._run is not None:
                self._run.finalizer()
                self._run = None
            self.status.value = say("Cancelled; container deleted.")
        elif task.exception() is not None:
            error = task.exception()
            self.status.value = say("The monitor stopped on an error: {error}",
                                    error=f"{type(error).__name__}: {error}")
        self.start_button.disabled, self.stop_button.disabled = False, True

    def _read_stderr(self, run: _Run) -> None:
        """Keep the container's last few error lines (a fork bomb prints one per failed fork)."""
        fd = run.container.stderr
        if fd is None:
            return
        try:
            while chunk := os.read(fd, 65536):
                run.stderr_buffer = (run.stderr_buffer + chunk)[-4096:]
                *lines, run.stderr_buffer = run.stderr_buffer.split(b"\n")
                run.stderr_lines = (run.stderr_lines + [line.decode(errors="replace") for line in lines])[-5:]
        except BlockingIOError:
            return
        except OSError:
            pass
        try:  # end of file: the container closed its stderr
            asyncio.get_running_loop().remove_reader(fd)
        except (RuntimeError, ValueError):
            pass

    def _preview(self, _change=None) -> None:
        """Before the first run, draw the limits the sliders set: moving a slider moves its line."""
        if self._starting or self.running or self.result is not None:
            return  # keep the live or the final plot
        empty = series([])
        empty.memory_limit_mib = float(self.memory_slider.value)
        empty.pids_limit = self.pids_slider.value
        self._draw(empty, cpu_limit=self.cpus_slider.value,
                   title=say("cgroup live monitor: choose a load and its limits, then press Start"))

    def _draw(self, data: Series | None = None, *, title: str = "", cpu_limit: float | None = None) -> float:
        """Render the samples (or ``data``) into the Image widget; returns the seconds it took."""
        started = time.monotonic()
        if self._plot is None:
            self._plot = MonitorPlot()
        self._plot.update(data or series(self.samples), cpu_limit=cpu_limit, title=title)
        self.image.value = self._plot.png()
        return time.monotonic() - started


def _exit_code_if_ended(container: Container) -> int | None:
    """The exit code once the container has ended, None while it runs. Never blocks."""
    try:
        return container.wait(timeout=0)
    except TimeoutError:
        return None


class MonitorBox(widgets.VBox):
    """The monitor's layout; closing it stops the run and deletes the container."""

    def __init__(self, monitor: CgroupMonitor, children):
        super().__init__(children)
        self._monitor = weakref.ref(monitor)

    def close(self):
        monitor = self._monitor()
        if monitor is not None:
            monitor.stop()  # the sampling task cleans up at its next step
        for child in self.children:
            child.close()
        super().close()
