"""YAML configs: keys, types, line numbers in messages, overrides, objectives."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import pytest

import gpbo
from gpbo.command import CommandObjective
from gpbo.config import ConfigError, FileObjective, load_config, parse_override
from gpbo.exceptions import GpboWarning

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

OBJECTIVE = """
def f(params):
    return (params["x"] - 1.0) ** 2


not_a_function = 3
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temporary working directory with an objective file in it."""
    (tmp_path / "obj.py").write_text(OBJECTIVE)
    (tmp_path / "train.py").write_text("print(1.0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # objectives add their folders
    monkeypatch.delitem(sys.modules, "obj", raising=False)  # imported by module objectives
    yield tmp_path
    sys.modules.pop("obj", None)


def write(folder: Path, text: str, name: str = "c.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


BASE = """
objective: obj.py:f
space:
  x: {type: real, low: -2.0, high: 2.0}
n_trials: 4
"""


def test_a_full_config_is_read_into_optimize_keywords(project):
    path = write(
        project,
        """
        objective: obj.py:f
        direction: maximize
        metric: acc
        space:
          lr: {type: real, low: 1e-4, high: 1, log: true}
          n: {type: int, low: 1, high: 8}
          act: {type: choice, values: [relu, gelu]}
        n_trials: 10
        batch_size: 2
        strategy: {type: grid, levels: 3}
        n_init: 4
        devices: [cpu, cpu]
        workers_per_device: 1
        executor: {type: process, grace_period: 5}
        mode: async
        surrogate_device: cpu
        trial_timeout: 60
        timeout: 3600
        max_consecutive_failures: null
        seed: 7
        verbose: false
        run_dir: out/run1
        """,
    )
    config = load_config(path)
    assert config.space["lr"] == gpbo.Real(1e-4, 1.0, log=True)  # 1e-4 is a number
    assert config.space["n"] == gpbo.Int(1, 8)
    assert config.space["act"] == gpbo.Choice(["relu", "gelu"])
    options = config.options
    assert isinstance(options["strategy"], gpbo.strategies.Grid)
    assert options["strategy"].levels == 3
    assert options["executor"].grace_period == 5.0
    assert options["direction"] == "maximize" and options["mode"] == "async"
    assert options["max_consecutive_failures"] is None and options["verbose"] is False
    assert config.run_dir == project / "out" / "run1"
    assert config.journal_path == project / "out" / "run1" / "journal.jsonl"
    assert isinstance(config.objective, FileObjective)
    assert config.objective({"x": 3.0}) == 4.0
    assert config.optimize_kwargs()["batch_size"] == 2


def test_warm_start_takes_a_path_or_a_list_and_names_the_line_of_a_bad_one(project):
    assert load_config(write(project, BASE + "warm_start: runs/old\n")).options[
        "warm_start"] == ["runs/old"]
    both = BASE + "warm_start: [runs/a, runs/b/journal.jsonl]\n"
    assert load_config(write(project, both)).options["warm_start"] == [
        "runs/a", "runs/b/journal.jsonl"]
    with pytest.raises(ConfigError, match=r"line 5: warm_start must be a path or a list of "
                       r"paths to earlier runs' journals, got 3 .*e\.g\. warm_start: runs/"):
        load_config(write(project, BASE + "warm_start: 3\n"))


def test_enqueue_takes_points_of_the_space_and_names_the_line_of_a_bad_one(project):
    text = BASE + "enqueue:\n  - {x: 1.5}\n  - {x: 0}\n"
    assert load_config(write(project, text)).options["enqueue"] == [{"x": 1.5}, {"x": 0.0}]
    with pytest.raises(ConfigError, match=r"line 7: enqueue\[1\]: .*outside"):
        load_config(write(project, BASE + "enqueue:\n  - {x: 1.5}\n  - {x: 9}\n"))
    with pytest.raises(ConfigError, match=r"line 5: enqueue must be a list of parameter "
                       r"mappings, one per trial, got \{'x': 1\} \(dict\); e\.g\."):
        load_config(write(project, BASE + "enqueue: {x: 1}\n"))


def test_batch_size_auto_is_left_out_in_async_mode(project):
    # async has no rounds: the number "auto" became drew a warning naming a value never written
    text = BASE + "batch_size: auto\ndevices: [cpu, cpu]\n"
    assert load_config(write(project, text)).optimize_kwargs()["batch_size"] == 2
    config = load_config(write(project, text + "mode: async\n"))
    assert "batch_size" not in config.optimize_kwargs()


def test_ray_executor_options_are_checked_without_starting_ray(project):
    pytest.importorskip("gpbo.executors.ray")
    path = write(project, BASE + "executor: {type: ray, gpus: 1}\n")
    with pytest.raises(ConfigError, match=r"line 5: .*no option 'gpus'; did you mean 'gpus_per"):
        load_config(path)
    assert load_config(write(project, BASE + "executor: ray\n")).options["executor"] == "ray"


def test_defaults_and_batch_size_auto(project):
    config = load_config(write(project, BASE + "batch_size: auto\ndevices: [cpu, cpu, cpu]\n"))
    assert config.run_dir == project / "runs" / "c"
    assert config.optimize_kwargs()["batch_size"] == 3
    # on Ray the driver's slots say nothing of the cluster: optimize() resolves it on connecting
    ray = load_config(write(project, BASE + "batch_size: auto\nexecutor: ray\n"))
    assert ray.optimize_kwargs()["batch_size"] == "auto"


@pytest.mark.parametrize(
    ("extra", "line", "match"),
    [
        ("n_trail: 5\n", 5, r"unknown key 'n_trail'; did you mean 'n_trials'\?"),
        ("strategy: bayse\n", 5, r"unknown strategy 'bayse'; did you mean 'bayes'\?"),
        ("strategy: {type: grid, levls: 3}\n", 5, r"no option 'levls'; did you mean 'levels'"),
        ("executor: {type: proces}\n", 5, r"unknown executor 'proces'; did you mean 'process'"),
        ("executor: {type: process, grace: 1}\n", 5, r"did you mean 'grace_period'"),
        ("batch_size: many\n", 5, r"batch_size must be a positive int or 'auto'.*'many' \(str\)"),
        ("direction: max\n", 5, r"direction must be 'minimize' or 'maximize'"),
        ("trial_timeout: -1\n", 5, r"trial_timeout must be a positive, finite number of"),
        ("timeout: .inf\n", 5, r"timeout must be a positive, finite number of seconds, or null"),
        ("seed: 1.5\n", 5, r"seed must be a non-negative int or null, got 1.5 \(float\)"),
        ("seed: -1\n", 5, r"seed must be a non-negative int or null, got -1 \(int\)"),
        ("verbose: 1\n", 5, r"verbose must be true or false"),
        ("devices: {a: 1}\n", 5, r"devices must be 'auto', a positive int"),
        ("journal: j.jsonl\n", 5, r"journal is not a config key.*set run_dir"),
        ("n_trials: 5\n", 5, r"the key 'n_trials' appears twice \(first on line 4\)"),
    ],
)
def test_mistakes_name_the_line_and_what_was_expected(project, extra, line, match):
    path = write(project, BASE + extra)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}, line {line}: ")


def test_wrong_types_in_the_space_name_the_parameter_line(project):
    text = """
    objective: obj.py:f
    n_trials: 3
    space:
      x: {type: real, low: -1.0, high: 1.0}
      y: {type: real, low: 2.0, high: 1.0}
    """
    with pytest.raises(ConfigError, match=r"line 5: parameter 'y': Real needs low < high"):
        load_config(write(project, text))
    for spec, match in [
        ("{low: 0, high: 1}", r"line 4: parameter 'x' needs a type: real, int or choice"),
        ("{tpye: real, low: 0, high: 1}", r"line 4: .*needs a type.*'tpye'; did you mean 'type'"),
        ("{type: rael, low: 0, high: 1}", r"line 4: .*unknown type 'rael'; did you mean 'real'"),
        ("{type: real, low: 0, hgih: 1}", r"line 4: .*no key 'hgih'; did you mean 'high'"),
        ("{type: choice, values: a}", r"line 4: parameter 'x': values must be a list"),
        # unbracketed values: the comma ends `values` and `sgd` reads as a key of its own
        ("{type: choice, values: adam, sgd, rms}",
         r"line 4: parameter 'x': values must be a list in brackets, such as "
         r"values: \[adam, sgd, rms\] \(without them, 'sgd' reads as a key"),
        ("\n    type: choice\n    values: adam, sgd",
         r"line 6: parameter 'x': values must be a list, such as \[adam, sgd\], got 'adam, sgd'"),
        ("[0, 1]", r"line 4: parameter 'x' must be a mapping"),
    ]:
        path = write(project, f"objective: obj.py:f\nn_trials: 3\nspace:\n  x: {spec}\n")
        with pytest.raises(ConfigError, match=match):
            load_config(path)


def test_missing_pieces_are_named(project):
    with pytest.raises(ConfigError, match="n_trials is missing"):
        load_config(write(project, "objective: obj.py:f\nspace: {x: {type: int, low: 0, high: 3}}"))
    with pytest.raises(ConfigError, match="space is missing"):
        load_config(write(project, "objective: obj.py:f\nn_trials: 3\n"))
    with pytest.raises(ConfigError, match="line 2: space is empty; give at least one parameter"):
        load_config(write(project, "objective: obj.py:f\nspace: {}\nn_trials: 3\n"))
    # `space:` with nothing under it (parameters not indented, say) is there, and empty
    with pytest.raises(ConfigError, match="line 2: space is empty; give at least one parameter"):
        load_config(write(project, "objective: obj.py:f\nspace:\nn_trials: 3\n"))
    with pytest.raises(ConfigError, match="space must be a mapping of parameter names"):
        load_config(write(project, "objective: obj.py:f\nspace: [x]\nn_trials: 3\n"))
    with pytest.raises(ConfigError, match="say what a trial runs"):
        load_config(write(project, "n_trials: 3\nspace: {x: {type: int, low: 0, high: 3}}\n"))
    with pytest.raises(ConfigError, match="no config file"):
        load_config(project / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(write(project, "n_trials: [3\n"))
    assert "<unicode string>" not in str(info.value) and ".yaml, line 1" in str(info.value)


def test_objective_file_and_function_problems_say_which(project):
    cases = [
        ("missing.py:f", r"line 1: objective file 'missing.py' not found \(looked in"),
        ("obj.py:g", r"line 1: objective file .*obj.py' has no function 'g'"),
        ("obj.py:ff", r"has no function 'ff'; did you mean 'f'\?"),
        ("obj.py:not_a_function", r"'not_a_function' is an int, not a function"),
        ("nosuchmodule.sub:f", r"objective module 'nosuchmodule.sub' not found"),
        ("obj:nope", r"module 'obj' has no function 'nope'"),
        ("just_a_name", r"objective must be 'path/to/file.py:function'"),
    ]
    for spec, match in cases:
        path = write(project, BASE.replace("obj.py:f", spec))
        with pytest.raises(ConfigError, match=match):
            load_config(path)
    (project / "broken.py").write_text("import nonexistent_package_xyz\n")
    with pytest.raises(
        ConfigError, match=r"(?s)importing the objective file.*nonexistent_package_xyz"
    ):
        load_config(write(project, BASE.replace("obj.py:f", "broken.py:f")))


def test_objective_forms(project):
    config = load_config(write(project, BASE.replace("obj.py:f", "obj:f")))
    assert config.objective({"x": 1.0}) == 0.0  # module form, imported from the cwd
    # A relative file is looked up from the cwd first, then beside the config.
    sub = project / "sub"
    sub.mkdir()
    (sub / "near.py").write_text(OBJECTIVE)
    config = load_config(write(sub, BASE.replace("obj.py:f", "near.py:f")))
    assert config.objective.path == str(sub / "near.py")
    clone = pickle.loads(pickle.dumps(config.objective))  # what the process executor sends
    assert clone({"x": 0.0}) == 1.0
    # Another project's file of the same name in the cwd is used, but not silently.
    (project / "near.py").write_text("def f(params):\n    return 42.0\n")
    with pytest.warns(GpboWarning, match=r"objective file 'near.py' is both .*beside the config"):
        config = load_config(sub / "c.yaml")
    assert config.objective.path == str(project / "near.py")


@pytest.mark.parametrize(
    ("executor", "grace"),
    [
        ("executor: {type: serial, grace_period: 6}\n", 6.0),  # all of it: nothing kills the driver
        ("executor: serial\n", 1.0),
        ("executor: {type: process, grace_period: 8}\n", 4.0),  # the worker stops it in time
        ("", 1.0),
    ],
)
def test_a_stopped_command_gets_the_executors_grace_period(project, executor, grace):
    base = BASE.replace("objective: obj.py:f", 'command: "{python} train.py --x {x}"')
    assert load_config(write(project, base + executor)).objective.grace_period == grace


def test_yes_no_choices_of_a_command_are_warned_of_as_booleans(project, caplog):
    base = BASE.replace("objective: obj.py:f", 'command: "{python} train.py --x {x} --aug {aug}"')
    x_line = "  x: {type: real, low: -2.0, high: 2.0}\n"
    yes_no = base.replace(x_line, x_line + "  aug: {type: choice, values: [yes, no]}\n")
    config = load_config(write(project, yes_no))
    assert config.objective.argv({"x": 0.5, "aug": True})[-1] == "True"
    assert "choice 'aug' has the values [True, False]" in caplog.text
    assert "quote them" in caplog.text
    caplog.clear()
    load_config(write(project, yes_no.replace("[yes, no]", "['yes', 'no']")))
    assert "quote them" not in caplog.text


def test_the_serial_grace_period_is_checked():
    from gpbo.executors import Serial

    with pytest.raises(gpbo.GpboError, match=r"Serial\(grace_period=...\).*got -1"):
        Serial(grace_period=-1)


def test_command_configs(project, caplog):
    base = BASE.replace("objective: obj.py:f", 'command: "{python} train.py --x {x}"')
    acc = "direction: maximize\nmetric: acc\nmetric_regex: 'acc=(\\S+)'\n"
    config = load_config(write(project, base + acc))
    objective = config.objective
    assert isinstance(objective, CommandObjective)
    assert objective.metric == "acc" and objective.metric_regex == r"acc=(\S+)"
    assert objective.log_dir == str(config.run_dir / "trials")
    assert objective.argv({"x": 0.5})[1:] == ["train.py", "--x", "0.5"]

    unquoted = base.replace('"{python} train.py --x {x}"', "{python} train.py --x {x}")
    with pytest.raises(ConfigError, match=r"(?s)not valid YAML.*quote the command template"):
        load_config(write(project, unquoted))
    with pytest.raises(ConfigError, match=r"line 1: command must be a string .*quote it"):
        load_config(write(project, base.replace('"{python} train.py --x {x}"', "{python}")))
    with pytest.raises(ConfigError, match=r"placeholder \{y\} is neither a parameter"):
        load_config(write(project, base.replace("{x}", "{y}")))
    with pytest.raises(ConfigError, match=r"placeholder \{xx\}.*did you mean 'x'"):
        load_config(write(project, base.replace("{x}", "{xx}")))
    json_arg = base.replace('--x {x}"', """--x {x} --opts '{\\"epochs\\": 3}'\"""")
    with pytest.raises(ConfigError, match=r'placeholder \{"epochs"\}.*double literal braces'):
        load_config(write(project, json_arg))
    with pytest.raises(ConfigError, match=r"script 'nope.py' is not in"):
        load_config(write(project, base.replace("train.py", "nope.py")))
    with pytest.raises(ConfigError, match=r"line 5: metric_regex .* needs a group"):
        load_config(write(project, base + "metric_regex: 'acc=1'\n"))
    with pytest.raises(ConfigError, match="metric_regex reads a command's output"):
        load_config(write(project, BASE + "metric_regex: 'a=(1)'\n"))
    with pytest.raises(ConfigError, match="objective or command, not both"):
        load_config(write(project, base + "objective: obj.py:f\n"))
    load_config(write(project, base.replace(" --x {x}", "")))
    assert "never used" in caplog.text


def test_numbers_in_a_command_list_are_its_words_and_booleans_are_refused(project):
    listed = 'command: ["{python}", train.py, --epochs, 10, --scale, 0.5, --x, "{x}"]'
    base = BASE.replace("objective: obj.py:f", listed)
    config = load_config(write(project, base))
    assert config.objective.argv({"x": 0.25})[1:] == [
        "train.py", "--epochs", "10", "--scale", "0.5", "--x", "0.25"
    ]
    assert config.resolved()["command"][3] == 10  # config.yaml keeps what was written
    with pytest.raises(ConfigError, match=r"line 1: the command's word True .* quote it"):
        load_config(write(project, base.replace("10", "yes")))


def test_command_templates_with_format_specs_and_per_trial_scripts(project):
    (project / "archs").mkdir()
    (project / "archs" / "small.py").write_text("print(1.0)\n")
    base = BASE.replace("objective: obj.py:f", "command: CMD").replace(
        "n_trials: 4", "  arch: {type: choice, values: [small, big]}\nn_trials: 4"
    )
    # a format spec takes the parameter's real type; a script named by a parameter is per trial
    template = '"{python} train.py --x {x:.4g} --n {trial_number:03d} --arch archs/{arch}.py"'
    config = load_config(write(project, base.replace("CMD", template)))
    assert config.objective.argv({"x": 0.0123456, "arch": "small"}, trial_number=7)[1:] == [
        "train.py", "--x", "0.01235", "--n", "007", "--arch", "archs/small.py"
    ]
    # a spec the parameter's type cannot take fails at load, naming the line, not at trial 0
    bad = base.replace("CMD", '"{python} train.py --arch {arch:.3f}"')
    with pytest.raises(ConfigError, match=r"line 1: .*cannot be filled.*filled with"):
        load_config(write(project, bad))


def test_a_metric_usually_maximized_without_a_direction_is_warned_about(project, recwarn):
    with pytest.warns(GpboWarning, match=r"metric 'val_acc' is minimized .* direction: maximize"):
        load_config(write(project, BASE + "metric: val_acc\n"))
    load_config(write(project, BASE + "metric: val_acc\ndirection: minimize\n"))  # said so
    load_config(write(project, BASE + "metric: val_loss\n"))
    assert not [w for w in recwarn if issubclass(w.category, GpboWarning)]
    # a regex read without metric: names its value "value", which says nothing
    command = BASE.replace("objective: obj.py:f", 'command: "{python} train.py --x {x}"')
    reads_acc = command + "metric_regex: 'Final validation accuracy: ([0-9.]+)%'\n"
    with pytest.warns(GpboWarning, match=r"metric_regex 'Final validation accuracy: .*' reads "
                      r"what looks like a score, and it is minimized .*direction: maximize"):
        load_config(write(project, reads_acc))
    load_config(write(project, reads_acc + "direction: minimize\n"))
    load_config(write(project, command + "metric_regex: 'val_loss=([0-9.]+)'\n"))
    assert not [w for w in recwarn if issubclass(w.category, GpboWarning)]


def test_overrides(project):
    path = write(project, BASE + "strategy: grid\n")
    config = load_config(
        path,
        overrides=["n_trials=9", "strategy.levels=3", "space.x.high=5", "seed=", "run_dir=r2"],
    )
    assert config.options["n_trials"] == 9
    assert isinstance(config.options["strategy"], gpbo.strategies.Grid)
    assert config.options["strategy"].levels == 3
    assert config.space["x"] == gpbo.Real(-2.0, 5.0)
    assert config.options["seed"] is None
    assert config.run_dir == project / "r2"
    assert config.data["strategy"] == {"type": "grid", "levels": 3}

    with pytest.raises(ConfigError, match=r"^--set n_trails=3: unknown key 'n_trails'; did you"):
        load_config(path, overrides=["n_trails=3"])
    with pytest.raises(ConfigError, match=r"^--set n_trials=lots: n_trials must be a positive"):
        load_config(path, overrides=["n_trials=lots"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, overrides=["n_trials"])
    with pytest.raises(ConfigError, match="n_trials is 4, not a mapping"):
        load_config(path, overrides=["n_trials.x=1"])
    # a parameter made invalid by --set is blamed on the --set, not on the file's line
    with pytest.raises(ConfigError, match=r"^--set space.x.low=9: .*swap"):
        load_config(path, overrides=["space.x.low=9"])
    with pytest.raises(ConfigError, match=r"unknown type \['real'\]"):
        load_config(path, overrides=["space.x.type=[real]"])
    with pytest.raises(ConfigError, match=r"^--set strategy=grid replaces the whole strategy, "
                       r"dropping the earlier --set strategy.levels=3; put --set strategy=grid"):
        load_config(path, overrides=["strategy.levels=3", "strategy=grid"])
    in_order = load_config(path, overrides=["strategy=grid", "strategy.levels=3"])
    assert in_order.options["strategy"].levels == 3
    with pytest.raises(ConfigError, match=r"^--set n_init=5: n_init: 5 and the strategy's own"):
        load_config(write(project, BASE + "strategy: {type: bayes, n_init: 3}\n"),
                    overrides=["n_init=5"])
    assert parse_override("devices=[cpu, cpu]") == (("devices",), ["cpu", "cpu"])
    assert parse_override("command={python} t.py") == (("command",), "{python} t.py")
    assert parse_override("strategy.levels=7") == (("strategy", "levels"), 7)
    # text keys take the text as typed: YAML read these as a mapping and as nothing
    assert parse_override("metric_regex=acc: ([0-9.]+)") == (("metric_regex",), "acc: ([0-9.]+)")
    assert parse_override("metric_regex=#(\\d+)") == (("metric_regex",), "#(\\d+)")
    assert parse_override("command=[python, t.py]") == (("command",), ["python", "t.py"])


def test_resolved_config_reads_back_the_same(project):
    config = load_config(write(project, BASE), overrides=["n_trials=6", "space.x.low=-1"])
    (project / "out").mkdir()
    again = project / "out" / "config.yaml"
    again.write_text(config.to_yaml())
    reread = load_config(again)
    assert reread.space == config.space
    assert reread.options == config.options
    assert reread.run_dir == config.run_dir
    assert reread.objective.path == config.objective.path  # resolved, runnable from anywhere
    # strings that gpbo reads as floats unquoted are written quoted: "1e-3" came back 0.001
    text = BASE.replace("n_trials", '  tag: {type: choice, values: ["1e-3", "2E5", "yes", '
                                    '1e-3]}\nn_trials')
    config = load_config(write(project, text))
    again.write_text(config.to_yaml())
    assert load_config(again).space == config.space
    assert config.space["tag"].values == ("1e-3", "2E5", "yes", 0.001)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_config(path, load_objective=False)
    assert config.options["n_trials"] >= 1
    assert len(config.space) >= 2


def test_the_main_config_finds_its_objective_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository root
    config = load_config(ROOT / "configs" / "mlp_digits.yaml", load_objective=False)
    assert Path(config.objective.path) == ROOT / "examples" / "mlp_digits.py"
    assert config.run_dir == tmp_path / "runs" / "mlp_digits"


def test_only_the_script_is_looked_for_and_a_missing_program_is_refused_at_load(project):
    base = BASE.replace("objective: obj.py:f", "command: CMD")
    # the script's own arguments may name .py files that do not exist yet (an output) or
    # that sit elsewhere; they were each taken for the script and refused
    for words in ("{python} train.py {x} --save-code generated.py",
                  "{python} train.py {x} --entry=sub/model.py",
                  "{python} -m pkg.train --x {x} --out later.py"):
        load_config(write(project, base.replace("CMD", f'"{words}"')))
    with pytest.raises(ConfigError, match=r"line 1: the command's program cannot start: "
                                          r"'no-such-program-xyz' is not on the PATH"):
        load_config(write(project, base.replace("CMD", '"no-such-program-xyz {x}"')))
    sub = project / "configs"
    sub.mkdir()
    script = sub / "train.sh"
    script.write_text("#!/bin/sh\necho 1.0\n")
    script.chmod(0o755)
    # beside the config, not where commands run: every trial failed, and counted as finished
    with pytest.raises(ConfigError, match=r"No such file or directory: './train.sh'.*it is in "):
        load_config(write(sub, base.replace("CMD", '"./train.sh {x}"')))
    load_config(write(sub, base.replace("CMD", '"configs/train.sh {x}"')))


def test_shell_syntax_in_a_command_is_warned_of(project, caplog):
    base = BASE.replace("objective: obj.py:f", "command: CMD")
    load_config(write(project, base.replace("CMD", '"{python} train.py {x} > out.txt"')))
    said = [r.getMessage() for r in caplog.records if "without a shell" in r.getMessage()]
    assert len(said) == 1 and "'>'" in said[0] and "bash -c" in said[0]
    caplog.clear()
    load_config(write(project, base.replace("CMD", '"{python} train.py {x} --mode a>b"')))
    assert "without a shell" not in caplog.text  # a word holding > is an argument
