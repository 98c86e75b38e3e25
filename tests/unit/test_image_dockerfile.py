"""Dockerfile parsing, word splitting and variables, .dockerignore, and config-only instructions."""

import pytest

from teachdock.image.dockerfile import (BuildError, DockerIgnore, apply_changes, apply_metadata, new_config,
                                        parse_dockerfile, process_word, split_words, words)


def one(text):
    (inst,) = parse_dockerfile(text)
    return inst


# ---------------------------------------------------------------------------- parsing

def test_comments_blank_lines_and_continuations():
    instructions = parse_dockerfile(
        "# syntax comment\n"
        "\n"
        "from busybox\n"
        "RUN echo a \\\n"
        "    # a comment inside a continuation is dropped\n"
        "\n"
        "    && echo b\n"
        "CMD [\"sh\"]\n")
    assert [(i.keyword, i.line) for i in instructions] == [("FROM", 3), ("RUN", 4), ("CMD", 8)]
    assert instructions[1].args == "echo a     && echo b"
    assert instructions[1].original == "RUN echo a     && echo b"
    assert instructions[2].exec_form == ["sh"]
    assert instructions[1].exec_form is None


def test_a_backslash_on_the_last_line_ends_the_instruction():
    assert one("RUN echo hi \\").args == "echo hi"


@pytest.mark.parametrize("text, message", [
    ("FROM busybox\nRUNN echo\n", "Dockerfile:2: unknown instruction: RUNN"),
    ("FROM busybox\n\nONBUILD RUN true\n", "Dockerfile:3: ONBUILD is not supported"),
    ("FROM busybox\nCOPY\n", "Dockerfile:2: COPY requires at least one argument"),
    ("FROM busybox\nCOPY --chown nobody /x\n", "Dockerfile:2: COPY: missing a value on flag --chown"),
])
def test_bad_instructions_name_their_line(text, message):
    with pytest.raises(BuildError) as caught:
        parse_dockerfile(text)
    assert str(caught.value).startswith(message)


def test_flags_are_split_off():
    inst = one("COPY --chown=1000:1000 --chmod=644 a b/")
    assert inst.flags == {"chown": "1000:1000", "chmod": "644"}
    assert inst.args == "a b/"


def test_invalid_json_is_shell_form():
    assert one('CMD ["sh", ').exec_form is None
    assert one("CMD [1, 2]").exec_form is None


# ---------------------------------------------------------------------------- words and variables

def test_split_words_keeps_quotes_for_processing():
    assert split_words('a "b c"  d\\ e \'f g\'') == ['a', '"b c"', 'd\\ e', "'f g'"]


@pytest.mark.parametrize("word, expected", [
    ("$A", "1"), ("${A}", "1"), ("x${A}y", "x1y"), ("$MISSING.", "."),
    ("${MISSING:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${EMPTY-dflt}", ""),
    ("${A:+alt}", "alt"), ("${MISSING:+alt}", ""), ("${MISSING:-${A}}", "1"),
    ("'$A'", "$A"), ('"$A b"', "1 b"), ("\\$A", "$A"), ('"a\\"b"', 'a"b'), ("$", "$"), ("cost: $5", "cost: "),
])
def test_process_word_substitutes_like_docker(word, expected):
    assert process_word(word, {"A": "1", "EMPTY": ""}) == expected


def test_bad_substitution_is_an_error_with_the_line():
    inst = parse_dockerfile("FROM x\nWORKDIR ${A!}\n")[1]
    with pytest.raises(BuildError, match="Dockerfile:2: bad substitution"):
        words(inst, {})


# ---------------------------------------------------------------------------- config-only instructions

def test_env_in_both_forms_and_in_order():
    config = new_config()
    env = {}
    apply_metadata(config, one('ENV A=1 B="two words" C=${A:-x}'), env)
    apply_metadata(config, one("ENV D the rest of the line"), env)
    apply_metadata(config, one("ENV A=changed"), env)
    assert config["config"]["Env"][1:] == ["A=changed", "B=two words", "C=x", "D=the rest of the line"]


def test_entrypoint_clears_an_inherited_cmd_but_not_one_set_here():
    config = new_config()
    config["config"]["Cmd"] = ["sh"]
    apply_metadata(config, one("ENTRYPOINT top -b"), {})
    assert config["config"]["Entrypoint"] == ["/bin/sh", "-c", "top -b"]
    assert config["config"]["Cmd"] is None
    apply_metadata(config, one('CMD ["-d"]'), {})
    apply_metadata(config, one('ENTRYPOINT ["ps"]'), {}, cmd_set=True)
    assert config["config"]["Cmd"] == ["-d"]


def test_shell_changes_the_shell_form():
    config = new_config()
    apply_metadata(config, one('SHELL ["/bin/ash", "-ec"]'), {})
    apply_metadata(config, one("CMD echo hi"), {})
    assert config["config"]["Cmd"] == ["/bin/ash", "-ec", "echo hi"]
    with pytest.raises(BuildError, match="JSON form"):
        apply_metadata(config, one("SHELL /bin/sh -c"), {})


def test_labels_ports_user_workdir_volume_stopsignal():
    config = new_config()
    history = [
        apply_metadata(config, one('LABEL version="1.0" "the name"=app'), {}),
        apply_metadata(config, one("EXPOSE 80 53/udp 8000-8002"), {}),
        apply_metadata(config, one("USER app:staff"), {}),
        apply_metadata(config, one("WORKDIR /srv"), {}),
        apply_metadata(config, one("WORKDIR data/../logs"), {}),
        apply_metadata(config, one('VOLUME ["/data"]'), {}),
        apply_metadata(config, one("STOPSIGNAL SIGINT"), {}),
    ]
    settings = config["config"]
    assert settings["Labels"] == {"version": "1.0", "the name": "app"}
    assert list(settings["ExposedPorts"]) == ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
    assert (settings["User"], settings["WorkingDir"], settings["StopSignal"]) == ("app:staff", "/srv/logs", "SIGINT")
    assert settings["Volumes"] == {"/data": {}}
    assert history[0] == "/bin/sh -c #(nop)  LABEL version=1.0 the name=app"
    assert history[3] == "/bin/sh -c #(nop) WORKDIR /srv"


@pytest.mark.parametrize("text", ["EXPOSE 70000", "EXPOSE http", "EXPOSE 90-80", "LABEL novalue", "ENV A"])
def test_bad_metadata_is_refused(text):
    with pytest.raises(BuildError):
        apply_metadata(new_config(), one(text), {})


def test_commit_changes_accept_only_docker_s_list():
    config = apply_changes(new_config(), ['CMD ["sh"]', "ENV A=b", "EXPOSE 80"])
    assert config["config"]["Cmd"] == ["sh"] and "A=b" in config["config"]["Env"]
    with pytest.raises(BuildError, match="RUN is not a valid change command"):
        apply_changes(new_config(), ["RUN echo no"])


# ---------------------------------------------------------------------------- .dockerignore

@pytest.mark.parametrize("path, ignored", [
    ("notes.md", True), ("README.md", False), ("docs/guide.md", False), ("build", True), ("build/out/x", True),
    ("a.pyc", True), ("src/deep/a.pyc", True), ("src/main.py", False), ("secret/key", True),
    ("secret/public", False), ("tmp1", True), ("tmp12", False), ("weird*name", True),
])
def test_dockerignore_like_docker(path, ignored):
    rules = DockerIgnore(["# comment", "*.md", "!README.md", "/build/", "**/*.pyc", "secret",
                          "!secret/public", "tmp?", "weird\\*name", ""])
    assert rules.ignored(path) is ignored
