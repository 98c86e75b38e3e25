"""teachdock on one shared server: The Littlest JupyterHub (TLJH), whose spawner is SystemdSpawner.

Install (as root, on a Debian 12 server; see classroom/README.md):

    curl -L https://tljh.jupyter.org/bootstrap.py | python3 - --admin INSTRUCTOR
    git clone URL /opt/teachdock && /opt/teachdock/scripts/setup
    /opt/tljh/user/bin/pip install -e /opt/teachdock          # the learners' Python gets teachdock
    cp /opt/teachdock/classroom/jupyterhub_config.py /opt/tljh/config/jupyterhub_config.d/teachdock.py
    tljh-config reload hub

Each learner's server starts in their own copy of the notebooks (~/teachdock, copied at the
first start), with a data root of their own.

The honest limit: containers need root. By default every learner's server runs as their own
Unix user (TLJH's jupyter-NAME), so teachdock runs *rootless*: containers in a user namespace
that maps root to the learner's uid, and no cgroups — no limits, no OOM, no stats (chapter 03),
no bridges, NAT or published ports (chapter 08 and the daemon chapters' networks), no daemon on
/run/teachdock; the cells tagged needs-root say so and skip. With TEACHDOCK_TRUSTED_ROOM=1 in
the hub's environment (`systemctl edit jupyterhub`: Environment=TEACHDOCK_TRUSTED_ROOM=1) every
server runs as root: the whole course works, but every learner is root on one shared kernel —
they can see, stop and break each other's containers and the server itself, and they share one
teachdockd. Only for a room of people you would give sudo to; otherwise, one VM per learner
(classroom/cloud-init.yaml).

A Korean room: TEACHDOCK_LANG=ko in the hub's environment (as above). Each server then gets
TEACHDOCK_LANG=ko (the lab's check results, hints and labels in Korean), opens the Korean first
chapter, and writes JupyterLab's Korean locale into the learner's settings at every start.

TLJH sets its own spawner (UserCreatingSpawner, a SystemdSpawner that creates the Unix user), so
this file configures SystemdSpawner's settings and leaves the spawner class alone.
"""

import os

c = get_config()  # noqa: F821 - JupyterHub's config loader defines get_config()

TEACHDOCK = "/opt/teachdock"
TRUSTED_ROOM = os.environ.get("TEACHDOCK_TRUSTED_ROOM", "0") == "1"
LANGUAGE = os.environ.get("TEACHDOCK_LANG", "en")
LOCALES = {"en": "en", "ko": "ko_KR"}  # TEACHDOCK_LANG -> JupyterLab's interface locale
FIRST_CHAPTER = {"en": "teachdock/00_start_here.ipynb", "ko": "teachdock/ko/00_start_here.ipynb"}
if LANGUAGE not in LOCALES:
    raise ValueError(f"TEACHDOCK_LANG={LANGUAGE!r} in the hub's environment: use one of {', '.join(LOCALES)}")
SINGLEUSER = "/opt/tljh/user/bin/jupyterhub-singleuser"

# SystemdSpawner formats every word of cmd with {USERNAME} and {USERID} (str.format): the script
# below has no other braces. It makes the learner's own copy of the notebooks at the first start,
# picks the data root, and becomes the single-user server.
AS_ROOT = 'export HOME=/home/jupyter-{USERNAME}; mkdir -p "$HOME"; cd "$HOME"; ' if TRUSTED_ROOM else ""
DATA_ROOT = "/var/lib/teachdock" if TRUSTED_ROOM else "$HOME/.local/share/teachdock"
FIRST_START = (
    AS_ROOT
    + 'test -d "$HOME/teachdock" || cp -r ' + TEACHDOCK + '/notebooks "$HOME/teachdock"; '
    + 'export TEACHDOCK_DATA_ROOT="' + DATA_ROOT + '"; '
    + '/opt/tljh/user/bin/python ' + TEACHDOCK + '/scripts/lab_language.py ' + LOCALES[LANGUAGE] + ' >/dev/null; '
    + 'exec ' + SINGLEUSER + ' "$@"'
)
c.Spawner.cmd = ["/bin/sh", "-c", FIRST_START, "teachdock-singleuser"]
c.Spawner.default_url = "/lab/tree/" + FIRST_CHAPTER[LANGUAGE]
c.Spawner.environment = {"TEACHDOCK_LANG": LANGUAGE}  # the kernels' language (teachdock/lab/common/language.py)

c.SystemdSpawner.mem_limit = "2G"  # per learner; the OOM demos ask for far less
c.SystemdSpawner.cpu_limit = 1.0
c.SystemdSpawner.isolate_tmp = True
if TRUSTED_ROOM:
    # root: namespaces, mounts, cgroups and networks for real; a home each, one kernel for all
    c.SystemdSpawner.username_template = "root"
    c.SystemdSpawner.user_workingdir = "/home/jupyter-{USERNAME}"
else:
    c.SystemdSpawner.disable_user_sudo = True  # rootless means rootless: no way back to root
