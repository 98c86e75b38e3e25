"""Set JupyterLab's interface language for scripts/lab: ``python scripts/lab_language.py ko_KR``.

JupyterLab takes its interface language from the setting ``locale`` of the plugin
``@jupyterlab/translation-extension:plugin`` (the menu Settings > Language writes the same
setting), and shows it only if the language pack of that locale is installed
(``jupyterlab-language-pack-ko-kr`` provides ``ko_KR``). scripts/lab writes the setting on every
start, so ``scripts/lab --lang ko`` and ``scripts/lab --lang en`` each get the language they ask
for, whatever the previous start left there.

The setting goes into the user-settings directory the lab is about to use: JupyterLab's own
default (``~/.jupyter/lab/user-settings``, or ``$JUPYTERLAB_SETTINGS_DIR`` when that is set).
Other keys of the same file are kept; JupyterLab writes that file as JSON5 (with comments),
which is read with ``json5`` (a dependency of jupyterlab-server) and written back as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PLUGIN_FILE = Path("@jupyterlab") / "translation-extension" / "plugin.jupyterlab-settings"


def settings_file(settings_dir: Path) -> Path:
    """The file that holds the translation plugin's user settings."""
    return Path(settings_dir) / PLUGIN_FILE


def read_settings(path: Path) -> dict:
    """The settings in ``path`` ({} if there is no file); JSON5, as JupyterLab writes it."""
    if not path.exists():
        return {}
    import json5  # noqa: PLC0415 - jupyterlab-server's dependency; only needed when a file exists

    settings = json5.loads(path.read_text(encoding="utf-8") or "{}")
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: not a settings object")
    return settings


def write_locale(settings_dir: Path, locale: str) -> Path:
    """Set ``locale`` (e.g. "ko_KR", or "en") in ``settings_dir``, keeping the file's other keys."""
    path = settings_file(settings_dir)
    settings = read_settings(path)
    settings["locale"] = locale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def default_settings_dir() -> Path:
    """The user-settings directory `jupyter lab` will use in this environment."""
    from jupyterlab.commands import get_user_settings_dir  # noqa: PLC0415

    return Path(get_user_settings_dir())


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: lab_language.py LOCALE   (e.g. ko_KR, or en)", file=sys.stderr)
        return 2
    path = write_locale(default_settings_dir(), argv[0])
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
