"""classroom/: the cloud-init user-data validated with cloud-init's own schema (Debian's cloud-init
package), the lab's systemd unit verified by systemd-analyze, the JupyterHub config loaded as the
hub loads it, and the login cards drawn from a CSV."""

import csv
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.support.scripts import load_script

CLASSROOM = Path(__file__).resolve().parents[2] / "classroom"
USER_DATA = CLASSROOM / "cloud-init.yaml"
UNIT = CLASSROOM / "teachdock-lab.service"
CLOUD_INIT = shutil.which("cloud-init")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_cloud_init = pytest.mark.skipif(CLOUD_INIT is None, reason="needs Debian's cloud-init package (scripts/setup)")
needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze (systemd)")


cards = load_script(CLASSROOM / "cards.py", "classroom_cards")


def user_data() -> dict:
    text = USER_DATA.read_text()
    assert text.startswith("#cloud-config\n")  # without this first line cloud-init ignores the file
    return yaml.safe_load(text)


def written(path: str) -> str:
    return next(f["content"] for f in user_data()["write_files"] if f["path"] == path)


# --- cloud-init ---------------------------------------------------------------------------------


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD_INIT, "schema", "--config-file", str(path)], capture_output=True, text=True,
                          timeout=120)


def known_keys() -> set[str]:
    """The top-level keys cloud-init's modules read, from its schema (22.4 lets unknown ones pass)."""
    script = ("from cloudinit.config.schema import get_schema\n"
              "s = get_schema(); d = s['$defs']\n"
              "print('\\n'.join(k for ref in s['allOf'] for k in d[ref['$ref'].rsplit('/', 1)[1]].get('properties', {})))")
    python = Path(CLOUD_INIT).read_text().splitlines()[0].removeprefix("#!").split()[0]
    return set(subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout.split())


@needs_cloud_init
def test_the_user_data_is_valid_cloud_config_and_uses_only_keys_cloud_init_reads():
    result = schema_check(USER_DATA)
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr
    assert set(user_data()) <= known_keys(), set(user_data()) - known_keys()


@needs_cloud_init
def test_the_schema_check_can_fail(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(USER_DATA.read_text().replace("ssh_pwauth: true", "ssh_pwauth: [yes, please]"))
    assert schema_check(broken).returncode != 0
    assert "runcmds" not in known_keys() and "runcmd" in known_keys()


def test_the_first_boot_script_parses_and_does_the_documented_steps(tmp_path):
    script = written("/usr/local/sbin/teachdock-classroom-setup")
    path = tmp_path / "setup"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    for step in ("git clone --depth 1", "tar -xz", '"$dest/scripts/setup"', "doctor --room", "chpasswd",
                 "systemctl enable --now teachdock-lab.service", "TEACHDOCK-LOGIN", "/root/teachdock-lab-url.txt"):
        assert step in script, step
    assert user_data()["runcmd"] == [["/usr/local/sbin/teachdock-classroom-setup"]]
    settings = dict(line.split("=", 1) for line in written("/etc/teachdock/classroom.env").splitlines()
                    if line and not line.startswith("#"))
    assert set(settings) == {"TEACHDOCK_REPO", "TEACHDOCK_REF", "TEACHDOCK_LAB_PORT", "TEACHDOCK_LANG"}
    assert settings["TEACHDOCK_LANG"].split()[0] == "en"
    for step in ("TEACHDOCK_LANG=$TEACHDOCK_LANG\" >>/etc/teachdock/lab.env", 'scripts/lab_language.py" "$locale"',
                 'url="http://127.0.0.1:$port$page?token=$token"'):
        assert step in script, step


@pytest.mark.parametrize("language, exit_status, chosen", [
    ("en", 0, "en /lab"), ("ko", 0, "ko_KR /lab/tree/ko/00_start_here.ipynb"), ("fr", 1, "")])
def test_the_first_boot_script_takes_the_rooms_language(tmp_path, language, exit_status, chosen):
    """The script's first lines, up to where it fetches the course, run on a classroom.env of our own."""
    script = written("/usr/local/sbin/teachdock-classroom-setup")
    head = script.split("dest=/opt/teachdock")[0]
    environment = tmp_path / "classroom.env"
    environment.write_text(f"TEACHDOCK_LANG={language}\n")
    path = tmp_path / "head.sh"
    path.write_text(head.replace("/etc/teachdock/classroom.env", str(environment)) + 'echo "$locale $page"\n')
    done = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == exit_status, done.stderr
    assert done.stdout.strip() == chosen
    if exit_status:
        assert "use en or ko" in done.stderr


def test_the_unit_the_user_data_writes_is_classroom_teachdock_lab_service():
    assert written("/etc/systemd/system/teachdock-lab.service") == UNIT.read_text()


# --- systemd ------------------------------------------------------------------------------------


def verify(unit_text: str, root: Path) -> subprocess.CompletedProcess:
    """systemd-analyze verify in a root of its own: the host's unit files, the unit, and the
    programs it names (verify checks that ExecStart is executable)."""
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/teachdock-lab.service").write_text(unit_text)
    jupyter = root / "opt/teachdock/.venv/bin/jupyter"
    jupyter.parent.mkdir(parents=True)
    jupyter.write_text("#!/bin/sh\n")
    jupyter.chmod(0o755)
    (root / "opt/teachdock/notebooks").mkdir()
    return subprocess.run([SYSTEMD_ANALYZE, "verify", f"--root={root}", "teachdock-lab.service"],
                          capture_output=True, text=True, timeout=60)


@needs_systemd_analyze
def test_the_lab_unit_verifies_without_a_word(tmp_path):
    result = verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    text = UNIT.read_text()
    assert "--ServerApp.ip=127.0.0.1" in text and "EnvironmentFile=/etc/teachdock/lab.env" in text


@needs_systemd_analyze
def test_systemd_analyze_reports_a_broken_unit(tmp_path):
    result = verify(UNIT.read_text().replace("ExecStart=", "ExecStrat="), tmp_path)
    assert "ExecStrat" in result.stdout + result.stderr or result.returncode != 0


# --- JupyterHub ---------------------------------------------------------------------------------


def hub_config(monkeypatch, trusted: bool, language: str | None = None):
    """The config file run as JupyterHub runs it: get_config() hands it a traitlets Config."""
    from traitlets.config import Config

    monkeypatch.setenv("TEACHDOCK_TRUSTED_ROOM", "1" if trusted else "0")
    if language is None:
        monkeypatch.delenv("TEACHDOCK_LANG", raising=False)
    else:
        monkeypatch.setenv("TEACHDOCK_LANG", language)
    config = Config()
    source = (CLASSROOM / "jupyterhub_config.py").read_text()
    exec(compile(source, "jupyterhub_config.py", "exec"), {"get_config": lambda: config})  # noqa: S102
    return config


@pytest.mark.parametrize("trusted", [False, True])
def test_the_jupyterhub_config_loads_and_its_command_survives_systemdspawners_format(monkeypatch, tmp_path, trusted):
    config = hub_config(monkeypatch, trusted)
    command = [word.format(USERNAME="ann", USERID=7) for word in config.Spawner.cmd]  # as SystemdSpawner does
    assert command[:2] == ["/bin/sh", "-c"]
    script = tmp_path / "start.sh"
    script.write_text(command[2])
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert "/opt/tljh/user/bin/jupyterhub-singleuser" in command[2] and "/opt/teachdock/notebooks" in command[2]
    assert "spawner_class" not in config.JupyterHub  # TLJH's own UserCreatingSpawner stays
    if trusted:
        assert config.SystemdSpawner.username_template == "root"
        assert "HOME=/home/jupyter-ann" in command[2]
    else:
        assert "username_template" not in config.SystemdSpawner and config.SystemdSpawner.disable_user_sudo
        assert 'TEACHDOCK_DATA_ROOT="$HOME/.local/share/teachdock"' in command[2]


def test_a_korean_room_on_the_hub(monkeypatch):
    english = hub_config(monkeypatch, trusted=False)
    assert english.Spawner.environment == {"TEACHDOCK_LANG": "en"}
    assert english.Spawner.default_url == "/lab/tree/teachdock/00_start_here.ipynb"
    assert "lab_language.py en " in english.Spawner.cmd[2]
    korean = hub_config(monkeypatch, trusted=False, language="ko")
    assert korean.Spawner.environment == {"TEACHDOCK_LANG": "ko"}
    assert korean.Spawner.default_url == "/lab/tree/teachdock/ko/00_start_here.ipynb"
    assert "lab_language.py ko_KR " in korean.Spawner.cmd[2]
    with pytest.raises(ValueError, match="use one of en, ko"):
        hub_config(monkeypatch, trusted=False, language="fr")


# --- login cards --------------------------------------------------------------------------------

LOGINS = "host,user,password,token,port\n203.0.113.7,learner,pa<ss,abc123,8888\nvm2.example,learner,x&y,def456,8889\n"


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cards = 0
        self.outside = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.cards += attrs.get("class") == "card"
        self.outside += [v for k, v in attrs.items() if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


def test_cards_one_per_vm_escaped_and_self_contained(tmp_path):
    source = tmp_path / "logins.csv"
    source.write_text(LOGINS)
    output = tmp_path / "cards.html"
    assert cards.main([str(source), "-o", str(output)]) == 0
    html = output.read_text()
    page = Page()
    page.feed(html)
    text = "".join(page.text)
    assert page.cards == 2 and page.outside == []
    assert "ssh -L 8888:127.0.0.1:8888 learner@203.0.113.7" in text
    assert "http://127.0.0.1:8889/lab?token=def456" in text
    assert "pa<ss" in text and "pa<ss" not in html and "x&amp;y" in html  # escaped in the page, right in print


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("host,user,password,token\nh,u,p,t\n", "lacks port"),
    ("host,user,password,token,port\n", "no VM"),
    ("host,user,password,token,port\nh,u,,t,8888\n", "line 2: no password"),
    ("host,user,password,token,port\nh,u,p,t,8888\nh2,u,p,t,http\n", "line 3: port 'http'"),
])
def test_cards_refuse_a_bad_csv_and_name_the_line(text, words, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cards.main(["-"]) == 1
    assert words in capsys.readouterr().err


def test_the_login_line_the_vm_writes_is_a_cards_row():
    """The first-boot script writes user,password,token,port; the README puts the host in front."""
    script = written("/usr/local/sbin/teachdock-classroom-setup")
    assert "printf 'learner,%s,%s,%s\\n' \"$password\" \"$token\" \"$TEACHDOCK_LAB_PORT\"" in script
    row = "vm1," + "learner,pw,tok,8888"
    logins = cards.read_logins(io.StringIO(",".join(cards.COLUMNS) + "\n" + row + "\n"))
    assert logins == [dict(zip(cards.COLUMNS, row.split(","), strict=True))]
    assert list(csv.reader(io.StringIO(row)))[0][0] == "vm1"
