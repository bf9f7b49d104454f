"""A runner's ``token_file``: the token comes from a file (a mounted Secret), never from config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyrunner.config import TOKEN_FROM_FILE, load_config, parse_config, render_config, save_config
from skyrunner.errors import ConfigError

SECRET = "glrt-t3_SecretValueNeverPrinted"


def write_config(directory: Path, token_file: str) -> Path:
    path = directory / "config.toml"
    path.write_text(
        "concurrent = 2\n"
        "[[runners]]\n"
        '  name = "first"\n'
        '  url = "https://gitlab.example.com"\n'
        f'  token = "{TOKEN_FROM_FILE}"\n'
        f'  token_file = "{token_file}"\n'
        '  executor = "kubernetes"\n'
        "[[runners]]\n"
        '  name = "second"\n'
        '  url = "https://gitlab.example.com"\n'
        '  token = "glrt-inline"\n'
        '  executor = "shell"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("relative", [True, False], ids=["relative-to-config", "absolute"])
def test_load_reads_the_token_from_the_file(tmp_path: Path, relative: bool) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text(f"  {SECRET}\n", encoding="utf-8")
    path = write_config(tmp_path, "secrets/token" if relative else str(secrets / "token"))

    config = load_config(path)

    assert config.runners[0].token.get_secret_value() == SECRET
    assert config.runners[1].token.get_secret_value() == "glrt-inline", "runners without token_file keep theirs"
    assert SECRET not in repr(config)


def test_saving_keeps_the_token_in_its_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "token")

    save_config(path, load_config(path))

    text = path.read_text(encoding="utf-8")
    assert SECRET not in text
    assert f'token = "{TOKEN_FROM_FILE}"' in text and 'token_file = "token"' in text
    assert 'token = "glrt-inline"' in text
    assert load_config(path).runners[0].token.get_secret_value() == SECRET


def test_render_writes_the_placeholder_and_parses_back() -> None:
    config, warnings = parse_config(
        f'[[runners]]\nurl = "https://g"\ntoken = "{SECRET}"\ntoken_file = "/t"\nexecutor = "shell"\n', "c.toml"
    )

    text = render_config(config)

    assert warnings == [], "token_file is a known key"
    assert SECRET not in text
    assert parse_config(text, "c.toml")[0].runners[0].token_file == "/t"


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "no such file"), ("", "expected one token, found nothing"),
     (f"{SECRET} {SECRET}x", "expected one token, found several words"), (b"\xff\xfe", "not UTF-8 text")],
    ids=["missing", "empty", "two-words", "binary"],
)  # fmt: skip
def test_a_bad_token_file_is_one_line_naming_the_key(tmp_path: Path, content: str | bytes | None, problem: str) -> None:
    token = tmp_path / "token"
    if isinstance(content, bytes):
        token.write_bytes(content)
    elif content is not None:
        token.write_text(content, encoding="utf-8")
    path = write_config(tmp_path, "token")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    message = str(caught.value)
    assert message == f"{path}: runners[0].token_file: {token}: {problem}"
    assert SECRET not in message
