"""The README keeps up with the code: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command

from tocsin.cli import app
from tocsin.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = [
        f"TOCSIN_{name.upper()}" for name in Settings.model_fields if f"`TOCSIN_{name.upper()}`" not in README
    ]
    assert missing == [], f"document these settings in README.md: {missing}"


def test_every_top_level_command_is_in_the_readme() -> None:
    commands = get_command(app).commands  # type: ignore[attr-defined]
    missing = [name for name in commands if f"tocsin {name}" not in README]
    assert missing == [], f"document these commands in README.md: {missing}"
