"""The needs-root guard and the prediction box: pure logic, no root needed."""

import os

import pytest

from teachdock.lab.common import Prediction, has_root, without_root_sentence
from teachdock.lab.common import root as root_module


def test_without_root_a_guard_prints_one_sentence_and_says_no(monkeypatch, capsys):
    monkeypatch.setattr(root_module.os, "geteuid", lambda: 1000)
    assert has_root("starts a container with a memory limit; cgroups belong to root.") is False
    printed = capsys.readouterr().out.strip()
    assert printed == ("Without root this cell is skipped: it starts a container with a memory limit; "
                       "cgroups belong to root. Start the lab as root (sudo scripts/lab) to see it.")
    assert "\n" not in printed


def test_as_root_a_guard_is_silent(monkeypatch, capsys):
    monkeypatch.setattr(root_module.os, "geteuid", lambda: 0)
    assert has_root("starts a daemon") is True
    assert capsys.readouterr().out == ""


def test_the_sentence_has_one_full_stop_where_the_caller_gave_one():
    assert without_root_sentence("mounts a tmpfs.").count("tmpfs.") == 1


def test_a_numeric_guess_is_compared_as_a_ratio():
    guess = Prediction("How long will run() take?", unit="ms")
    guess.lock_in(" 10 ")
    shown = guess.reveal(41.7)
    assert shown.guess == "10" and shown.off_by == pytest.approx(4.17)
    assert shown.verdict() == "off by a factor of 4 (more than you guessed)"
    assert "your guess: 10 ms" in repr(shown) and "measured here: 41.7 ms" in repr(shown)
    assert guess.reveal(12).verdict() == "within a factor of two"
    assert guess.reveal(1).verdict() == "off by a factor of 10 (less than you guessed)"


def test_a_word_guess_is_compared_as_text():
    guess = Prediction("Which PID will sh see for itself?")
    guess.lock_in("1")
    assert guess.reveal(1).verdict() == "exactly right"
    assert guess.reveal(2).verdict() == "within a factor of two"
    pid = Prediction("Which PID does the host give it?", exact=True)
    pid.lock_in("4000")
    assert pid.reveal(4321).verdict().startswith("different") and pid.reveal("4000").verdict() == "exactly right"
    guess = Prediction("Who is PID 1 in the container?")
    guess.lock_in("Sh")
    assert guess.reveal("sh").verdict() == "exactly right"
    assert guess.reveal("init").verdict().startswith("different")


def test_no_guess_still_shows_the_measurement():
    shown = Prediction("How many processes?").reveal(2)
    assert shown.guess is None and shown.verdict() == "no guess was locked in"
    assert "measured here</td><td><b>2</b>" in shown._repr_html_()
    Prediction("x").lock_in("   ")  # an empty box is no guess


def test_the_widget_locks_the_guess_in_when_the_button_is_pressed():
    guess = Prediction("How many ms?", unit="ms")
    box = guess.widget()
    text, button = box.children[1].children
    button.click()
    assert guess.guess is None and "type a guess first" in box.children[2].value
    text.value = "25"
    button.click()
    assert guess.guess == "25" and text.disabled and button.disabled
