"""deploy/image-test.sh, the script behind `make image-test`: its command line (usage errors exit
2 naming the option and the problem, before anything is installed or built), the Makefile target
that runs it outside `make test`, and the build context it relies on.

The script's real run (podman build, the runtime container against `ric sim`) takes minutes and
root, so it is `make image-test`, not part of this suite; deploy/README.md shows its output.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.stack import ROOT

SCRIPT = ROOT / "deploy" / "image-test.sh"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
IGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The script run with ``args``, its output captured (no podman is needed to parse them)."""
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=30, check=False
    )


def test_help_lists_every_option_the_script_accepts() -> None:
    """--help exits 0 and documents each option the argument parser handles."""
    done = run("--help")
    assert done.returncode == 0, done.stderr
    parsed = set(re.findall(r"^\s*(--[a-z-]+)\)", SCRIPT.read_text(), re.MULTILINE))
    assert parsed == {"--image", "--base", "--rebuild-base", "--budget-mb", "--timeout"}
    for option in parsed:
        assert re.search(rf"^\s+{option}\b", done.stdout, re.MULTILINE), option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown argument '--bogus'"),
        (["--image"], "--image needs a value"),
        (["--base", ""], "--base needs a value"),
        (["--budget-mb", "4x"], "--budget-mb (or RIC_IMAGE_BUDGET_MB) must be a whole number"),
        (["--timeout", "0"], "--timeout must be a positive whole number of seconds, got '0'"),
        (["--timeout", "-5"], "--timeout must be a positive whole number of seconds, got '-5'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(args: list[str], message: str) -> None:
    """A bad command line exits 2 with one line naming the option and what is wrong with it."""
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_bad_budget_from_the_environment_is_refused() -> None:
    """RIC_IMAGE_BUDGET_MB is checked like --budget-mb, and the message names both."""
    done = run(env={"PATH": "/usr/bin:/bin", "RIC_IMAGE_BUDGET_MB": "lots"})
    assert done.returncode == 2
    assert "RIC_IMAGE_BUDGET_MB" in done.stderr and "'lots'" in done.stderr, done.stderr


def test_make_image_test_runs_the_script_and_is_not_part_of_make_test() -> None:
    """`make image-test` calls deploy/image-test.sh, and `make test` does not depend on it."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^image-test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe and "deploy/image-test.sh" in recipe.group(1), "no image-test recipe"
    test_line = re.search(r"^test:(.*)$", makefile, re.MULTILINE)
    assert test_line and "image-test" not in test_line.group(1)
    assert re.search(r"^\.PHONY:.*\bimage-test\b", makefile, re.MULTILINE)


def test_the_build_context_admits_every_file_the_dockerfile_copies() -> None:
    """Each repository path a COPY in deploy/Dockerfile names is let through by its ignore file
    (which starts from `**`), so the build does not fail on a missing file such as a lock."""
    admitted = {
        line[1:].rstrip("/") for line in IGNORE.read_text().splitlines() if line.startswith("!")
    }
    assert admitted and "**" in IGNORE.read_text().splitlines()
    copied: list[str] = []
    for line in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    assert "requirements.lock" in copied and "ric" in copied, copied
    assert set(copied) <= admitted, set(copied) - admitted


def test_the_builder_fetches_only_hashed_files() -> None:
    """Every pip step of the builder stage either checks hashes (the locked dependencies, the
    locked setuptools) or fetches nothing (the project and xApps: --no-deps, and no build
    isolation, which would fetch an unhashed setuptools)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages = re.split(r"(?m)^FROM ", text)
    builder = next(s for s in stages if s.split(None, 3)[1:3] == ["AS", "builder"])
    steps = re.findall(r"pip (?:wheel|install)\b[^&]*", builder)
    assert len(steps) == 3, steps
    for step in steps:
        hashed = "--require-hashes" in step
        offline = "--no-deps" in step and "--no-build-isolation" in step
        assert hashed or offline, step
