"""TraceExplorer (chapter 07): type a docker command, run it through an ApiTracer, and look at
each of its API calls in full."""

from __future__ import annotations

import os
from html import escape

from teachdock.lab.client_and_daemon.api_tracer import ApiTracer, traced_env
from teachdock.lab.common.language import say
from teachdock.lab.client_and_daemon.trace_views import VERSION_PREFIX, TraceEntry, entry_details, trace_table


class TraceExplorer:
    """Type a docker command, run it through a tracer, and look at each of its calls in full.

    ``host``: the daemon (``unix://…``). ``explorer.run("ps -a")`` does what the button does,
    so a notebook (and its tests) can drive it too; ``explorer.entries`` is the last trace.
    """

    def __init__(self, host: str, directory: str | os.PathLike | None = None, command: str = "ps -a"):
        import ipywidgets as widgets

        self.host, self.directory = host, directory
        self.entries: list[TraceEntry] = []
        self.command = widgets.Text(value=command, description="docker", layout={"width": "60%"})
        self.button = widgets.Button(description=say("run through the tracer"), button_style="primary")
        self.output = widgets.HTML()
        self.table = widgets.HTML()
        self.step_choice = widgets.Dropdown(description=say("call"), layout={"width": "80%"})
        self.details = widgets.HTML()
        self.button.on_click(lambda _button: self.run(self.command.value))
        self.step_choice.observe(lambda _change: self._show(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.command, self.button]), self.output, self.table,
                                    self.step_choice, self.details])

    def run(self, command: str) -> list[TraceEntry]:
        import shlex
        import subprocess

        from teachdock.lab.client_and_daemon.daemon_lab import docker_cli  # noqa: PLC0415

        self.command.value = command
        binary = docker_cli()
        if binary is None:
            self.output.value = f"<i>{escape(say('The docker CLI is not installed here (apt-get install docker.io).'))}</i>"
            return []
        with ApiTracer(self.host, self.directory) as tracer:
            env = traced_env(tracer)
            try:
                done = subprocess.run([binary, *shlex.split(command)], env=env, capture_output=True, text=True,
                                      timeout=60, stdin=subprocess.DEVNULL)
                printed, code = done.stdout + done.stderr, done.returncode
            except subprocess.TimeoutExpired:
                printed, code = say("(stopped after 60 s: a command that waits for input or runs for ever)"), None
            tracer.wait_idle()
        self.entries = list(tracer.entries)
        self.output.value = (f"<b>$ docker {escape(command)}</b> → {escape(say('exit code {code}', code=code))}"
                             f"<pre style='max-height:10em;overflow:auto'>{escape(printed)}</pre>")
        self.table.value = trace_table(self.entries)._repr_html_()
        self.step_choice.options = [(f"{e.number}. {e.method} {VERSION_PREFIX.sub('', e.short_target)[:70]} "
                                     f"→ {e.status}", e.number - 1) for e in self.entries]
        self.step_choice.value = 0 if self.entries else None
        self._show()
        return self.entries

    def _show(self) -> None:
        index = self.step_choice.value
        self.details.value = entry_details(self.entries[index]) if index is not None and index < len(self.entries) \
            else ""
