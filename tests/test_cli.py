"""The command-line tools' shared helpers: flags grouped by purpose in --helpfull, required flags in one line."""

import subprocess
import sys
import textwrap

import pytest
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT

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


HELPFULL = textwrap.dedent("""
    import atexit, runpy, sys
    atexit.register(lambda: print("tensorflow loaded:", "tensorflow" in sys.modules, file=sys.stderr))
    sys.argv = [sys.argv[1], "--helpfull"]
    runpy.run_module(sys.argv[0], run_name="__main__")
""")
TOOLS = ["electra_tf.run_finetuning", "electra_tf.export", "electra_tf.convert_checkpoint", "electra_tf.demo",
         "electra_tf.run_pretraining"]


@pytest.mark.parametrize("tool", TOOLS)
def test_helpfull_shows_the_tools_and_absls_flags_only_without_loading_tensorflow(tool):
    result = subprocess.run([sys.executable, "-c", HELPFULL, tool], capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT, cwd=ROOT, env=CLI_ENV)
    assert result.stderr.strip().splitlines()[-1] == "tensorflow loaded: False", result.stderr[-2000:]
    out = result.stdout
    sections = [line[:-1] for line in out.splitlines() if line.endswith(":") and not line.startswith(" ")]
    absl_sections = {"absl.app", "absl.logging", "absl.flags"}
    assert absl_sections <= set(sections)
    # No absltest flags (--test_tmpdir, ...) and none of TensorFlow's (tensor tracer, pfor, TPU client).
    for name in ("--test_tmpdir", "--test_random_seed", "--trace_dir", "--op_conversion_fallback_to_while_loop",
                 "tensorflow", "absl.testing"):
        assert name not in out, name
    if tool == "electra_tf.run_finetuning":
        groups = ["Data and task", "Model", "Recipe", "Run and output"]
        assert [s for s in sections if s not in absl_sections and s != "flags"] == groups
        for group, flag in zip(groups, ("--label_column", "--init_checkpoint", "--learning_rate", "--output_dir")):
            assert out.index(f"\n{group}:\n") < out.index(f"  {flag}:") < out.index("\nabsl.app:\n"), flag



@pytest.mark.parametrize("tool,recipe,flag,value", [
    ("electra_tf.run_pretraining", "demo", "max_seq_length", "64"),
    ("electra_tf.run_finetuning", "demo_finetune", "learning_rate", "0.0003"),
])
def test_training_tools_take_shipped_recipes_by_name_from_any_directory(tool, recipe, flag, value, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", tool, *args], capture_output=True, text=True,
                              timeout=SUBPROCESS_TIMEOUT, cwd=tmp_path, env={**CLI_ENV, "PYTHONPATH": ROOT})

    # --helpxml shows each flag's value once the command line is parsed: the recipe's, from outside the repository.
    xml = run(f"--config={recipe}", "--helpxml").stdout
    current = xml[xml.index(f"<name>{flag}</name>"):].split("</flag>")[0]
    assert f"<current>{value}</current>" in current
    unknown = run("--config=no_such_recipe")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown --config 'no_such_recipe'")
    assert unknown.stderr.count("\n") == 1
