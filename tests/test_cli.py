"""The command-line tools' shared helpers: flags grouped by purpose in --helpfull, required flags in one line."""

import subprocess
import sys
import textwrap

from conftest import SUBPROCESS_TIMEOUT

TOOL = textwrap.dedent("""
    from absl import app, flags
    from electra_tf.utils import cli
    with cli.flag_group("Model"):
        flags.DEFINE_integer("hidden", 3, "Width.")
    with cli.flag_group("Data"):
        flags.DEFINE_string("data_dir", None, "Input.")
    def main(argv):
        cli.required_flags("data_dir")
        print("data_dir", flags.FLAGS.data_dir)
    app.run(cli.run(main))
""")


def _run(tmp_path, *args):
    script = tmp_path / "tool.py"
    script.write_text(TOOL)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


def test_helpfull_lists_each_group_under_its_title_before_absl(tmp_path):
    out = _run(tmp_path, "--helpfull").stdout
    data, model, absl_app = out.index("\nData:\n"), out.index("\nModel:\n"), out.index("\nabsl.app:\n")
    assert data < out.index("--data_dir") < model < out.index("--hidden") < absl_app
    # Each flag is listed once, in its group only.
    assert out.count("--data_dir:") == 1 and out.count("--hidden:") == 1


def test_missing_required_flag_is_one_line_and_exit_2(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --data_dir is required (see --helpfull)"
    assert _run(tmp_path, "--data_dir=x").stdout.strip() == "data_dir x"
