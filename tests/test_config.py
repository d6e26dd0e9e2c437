from pathlib import Path

import pytest

from clinassay.config import ClinassayConfig, load_config, with_overrides
from clinassay.terminology.errors import ClinassayInputError


def test_defaults_without_a_file() -> None:
    assert isinstance(load_config(None), ClinassayConfig)


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[audit]\nno_such_option = 3\n")
    with pytest.raises(ClinassayInputError) as excinfo:
        load_config(path)
    message = str(excinfo.value)
    assert "audit.no_such_option" in message and str(path) in message


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[trainning]\nepochs = 1\n")
    with pytest.raises(ClinassayInputError, match="trainning"):
        load_config(path)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[audit\n")
    with pytest.raises(ClinassayInputError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ClinassayInputError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_overrides_keep_unset_flags_and_revalidate() -> None:
    section = load_config(None).terminology
    assert with_overrides(section, cache_dir=None) is section
    updated = with_overrides(section, cache_dir=Path("/tmp/x"))
    assert updated.cache_dir == Path("/tmp/x")
