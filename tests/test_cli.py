import subprocess
import sys

from clinassay.cli import main


def test_help_lists_commands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out


def test_bad_usage_exits_2(capsys) -> None:
    assert main(["no-such-command"]) == 2


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "clinassay", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("clinassay ")
