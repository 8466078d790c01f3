"""The release workflow runs only tools/ scripts that CI here runs too, on exactly the tags the release tool makes."""

import fnmatch
import re

import pytest
from ci_release import parse_target
from layers import LAYERS, ROOT
from release import tag_name

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def _tag_patterns() -> list[str]:
    text = WORKFLOW.read_text()
    block = text.split("tags:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r'-\s+"([^"]+)"', block)


def test_the_workflow_triggers_on_every_release_tag_and_nothing_else():
    patterns = _tag_patterns()
    for name in [*LAYERS, "tiers"]:
        tag = tag_name(name, "1.2.3")
        assert any(fnmatch.fnmatchcase(tag, p) for p in patterns), f"{tag} starts no release run"
    assert not any(fnmatch.fnmatchcase("v1.2.3", p) for p in patterns)


def test_every_script_the_workflow_runs_is_run_by_ci_too():
    scripts = set(re.findall(r"python (tools/\w+\.py) (\w+)", WORKFLOW.read_text()))
    assert {s for s, _ in scripts} == {"tools/ci_release.py"} and {c for _, c in scripts} == {"build", "test"}
    ci = (ROOT / "dev").read_text()
    for script, command in scripts:
        assert f"{script} {command}" in ci, f"./dev test (= .ci/run) never runs {script} {command}"
    assert "id-token: write" in WORKFLOW.read_text() and "test.pypi.org" in WORKFLOW.read_text()


def test_a_tag_must_match_the_version_in_the_tree():
    from release import read_version

    current = read_version("pipeline")
    assert parse_target(f"tiers-pipeline-v{current}", ROOT) == ("pipeline", current, True)
    assert parse_target("pipeline", ROOT) == ("pipeline", current, False)
    with pytest.raises(SystemExit, match="tag tiers-pipeline-v99.0.0 says 99.0.0, but packages/pipeline is at"):
        parse_target("tiers-pipeline-v99.0.0", ROOT)
    with pytest.raises(SystemExit, match="neither a release tag"):
        parse_target("tiers-nope-v1.0.0", ROOT)
    meta = read_version("tiers")
    assert parse_target(f"tiers-v{meta}", ROOT) == ("tiers", meta, True)
