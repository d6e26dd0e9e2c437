"""`clinassay terminology show|stats|import`: output and exit codes (0 ok, 2 bad input)."""

from pathlib import Path

import pytest

from clinassay.cli import main
from clinassay.terminology import load_terminology

DATA = Path(__file__).parent / "data" / "terminology"


@pytest.fixture
def cache_env(tmp_path_factory, monkeypatch) -> Path:
    """CLINASSAY_CACHE_DIR pointing at the session's parsed cache (import tests get their own copy)."""
    root = tmp_path_factory.getbasetemp()
    load_terminology(cache_dir=root / "terminology-cache")
    cli_root = root / "cli-cache"
    target = cli_root / "terminology"
    if not target.exists():
        target.mkdir(parents=True)
        for core in (root / "terminology-cache").glob("core-*.pickle"):
            (target / core.name).write_bytes(core.read_bytes())
    monkeypatch.setenv("CLINASSAY_CACHE_DIR", str(cli_root))
    return cli_root


def test_show_with_language(cache_env, capsys) -> None:
    assert main(["terminology", "show", "n39.0", "--language", "es"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("N39.0  Urinary tract infection, site not specified")
    assert "es: Infección de vías urinarias, sitio no especificado  [exact, who]" in out
    assert "parent: N39" in out and "excludes1:" in out
    assert "fr:" not in out


def test_show_all_languages_and_children(cache_env, capsys) -> None:
    assert main(["terminology", "show", "S22.49"]) == 0
    out = capsys.readouterr().out
    assert "S22.49XA" in out and "children (6)" in out
    assert "ca: (none; no offline Catalan table)" in out
    assert "[subcategory via S22.4, who]" in out


def test_unknown_code_exits_2_with_suggestions(cache_env, capsys) -> None:
    assert main(["terminology", "show", "N39.7"]) == 2
    err = capsys.readouterr().err
    assert "unknown ICD-10-CM code 'N39.7'" in err and "did you mean N39.0" in err


def test_malformed_code_and_bad_language_exit_2(cache_env, capsys) -> None:
    assert main(["terminology", "show", "N3"]) == 2
    assert main(["terminology", "show", "N39.0", "--language", "xx"]) == 2


def test_stats(cache_env, capsys) -> None:
    assert main(["terminology", "stats"]) == 0
    out = capsys.readouterr().out
    assert "22 chapters" in out and "billable codes: 74,719" in out
    assert "ca: no Catalan ICD-10 table" in out
    for lang in ("en", "es", "ca", "pt", "fr", "it"):
        assert f"\n{lang} " in out


def test_import_commands(cache_env, capsys) -> None:
    assert main(["terminology", "import", "tsv", str(DATA / "good.tsv"), "--name", "cli-test"]) == 0
    assert "imported cli-test" in capsys.readouterr().out
    assert main(["terminology", "show", "N39.0", "--language", "ca"]) == 0
    assert "[exact, import:cli-test]" in capsys.readouterr().out
    assert main(["terminology", "import", "tsv", str(DATA / "broken.tsv")]) == 2
    assert "broken.tsv:3" in capsys.readouterr().err
    assert main(["terminology", "import", "datasus", str(DATA / "datasus_broken")]) == 2
    assert main(["terminology", "import", "datasus", str(DATA / "datasus_good")]) == 0
    assert main(["terminology", "stats"]) == 0
    assert "datasus (datasus): pt 10" in capsys.readouterr().out
    (cache_env / "terminology" / "imports" / "cli-test.json").unlink()
    (cache_env / "terminology" / "imports" / "datasus.json").unlink()


def test_a_configured_cache_dir_holds_for_every_command(cache_env, tmp_path, capsys) -> None:
    """[terminology] cache_dir is not only the terminology commands' business: a table imported there is
    what generate, audit, train and report see once they load the same config."""
    from clinassay.config import load_config

    folder = tmp_path / "tables"
    (folder).mkdir()
    for core in (cache_env / "terminology").glob("core-*.pickle"):
        (folder / core.name).write_bytes(core.read_bytes())
    config = tmp_path / "c.toml"
    config.write_text('[terminology]\ncache_dir = "tables"\n')
    assert main(["terminology", "import", "tsv", str(DATA / "good.tsv"), "--name", "configured",
                 "--config", str(config)]) == 0
    from clinassay.terminology import terminology

    terminology._CONFIGURED.clear()  # a new process that has not read the config
    assert not any(t.source == "import:configured" for t in load_terminology().imports)  # the default folder
    load_config(config)
    assert any(t.source == "import:configured" for t in load_terminology().imports)
