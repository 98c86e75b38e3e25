"""Predict, then run: a place to type a guess before a cell runs, shown beside the measurement.

The course asks "predict first" many times. ``Prediction`` makes the guess a thing on the
page: the learner types it into a box and presses **Lock in**; the next cell measures and calls
``prediction.reveal(measured)``, which shows the guess beside the measured value (and, for
numbers, how far off it was). Without a guess, reveal says so and still shows the measurement,
so "Run all" and nbval go on.

    guess = Prediction("How many ms will run() take on this machine?", unit="ms")
    guess                                    # shows the box
    ...
    guess.reveal(result.duration * 1000)     # in the cell that measures
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from teachdock.lab.common.checks import as_number
from teachdock.lab.common.language import say, translated


@dataclass
class Reveal:
    """The guess beside the measured value; text for a terminal, a small table in Jupyter."""

    question: str
    guess: str | None
    measured: object
    unit: str = ""
    exact: bool = False  # an identifier or a small count: right or wrong, no "factor of"

    @property
    def off_by(self) -> float | None:
        """Measured ÷ guess for numeric answers (2.0: the truth was twice the guess)."""
        guessed, measured = as_number(self.guess), as_number(self.measured)
        if guessed in (None, 0) or measured is None:
            return None
        return measured / guessed

    def verdict(self) -> str:
        if self.guess is None:
            return say("no guess was locked in")
        guessed, measured = as_number(self.guess), as_number(self.measured)
        if guessed is not None and guessed == measured:
            return say("exactly right")
        ratio = self.off_by
        if ratio is None or self.exact:
            same = str(self.guess).strip().lower() == str(self.measured).strip().lower()
            return say("exactly right") if same else say("different — read on to see why")
        if 0.5 <= ratio <= 2:
            return say("within a factor of two")
        factor = f"{ratio if ratio > 1 else 1 / ratio:.0f}"
        if ratio > 1:
            return say("off by a factor of {factor} (more than you guessed)", factor=factor)
        return say("off by a factor of {factor} (less than you guessed)", factor=factor)

    def _measured_text(self) -> str:
        value = f"{self.measured:.3g}" if isinstance(self.measured, float) else str(self.measured)
        return f"{value} {translated(self.unit)}".strip()

    def __repr__(self) -> str:
        guess = "—" if self.guess is None else f"{self.guess} {translated(self.unit)}".strip()
        return (f"{translated(self.question)}\n  {say('your guess')}: {guess}\n"
                f"  {say('measured here')}: {self._measured_text()}  ({self.verdict()})")

    def _repr_html_(self) -> str:
        guess = "—" if self.guess is None else escape(f"{self.guess} {translated(self.unit)}".strip())
        return (f'<table><tr><th colspan="2" style="text-align:left">{escape(translated(self.question))}</th></tr>'
                f"<tr><td>{escape(say('your guess'))}</td><td><b>{guess}</b></td></tr>"
                f"<tr><td>{escape(say('measured here'))}</td><td><b>{escape(self._measured_text())}</b></td></tr>"
                f"<tr><td></td><td><i>{escape(self.verdict())}</i></td></tr></table>")


@dataclass
class Prediction:
    """A question, a text box for the guess, and a Lock in button (ipywidgets, built on display)."""

    question: str
    unit: str = ""
    exact: bool = False  # True for a PID, a name or a small count: the verdict is right or different
    guess: str | None = None  # set by Lock in, or directly: prediction.guess = "10"
    _box: object = field(default=None, repr=False)

    def lock_in(self, value: str) -> None:
        value = str(value).strip()
        self.guess = value or None

    def widget(self):
        import ipywidgets as widgets

        box = widgets.Text(placeholder=say("your guess (in {unit})", unit=translated(self.unit)) if self.unit else say("your guess"))
        button = widgets.Button(description=say("Lock in"), button_style="info")
        status = widgets.HTML()

        def locked(_):
            self.lock_in(box.value)
            status.value = (f"<i>{escape(say('type a guess first'))}</i>" if self.guess is None
                            else say("locked in: <b>{guess}</b> — now run the next cell", guess=escape(self.guess)))
            if self.guess is not None:
                box.disabled = button.disabled = True

        button.on_click(locked)
        self._box = widgets.VBox([widgets.HTML(f"<b>{escape(say('Predict.'))}</b> {escape(translated(self.question))}"),
                                  widgets.HBox([box, button]), status])
        return self._box

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())

    def reveal(self, measured) -> Reveal:
        return Reveal(self.question, self.guess, measured, self.unit, self.exact)
