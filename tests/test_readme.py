"""The README's set-up commands and CI stay in step: CI must run the README's test command."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _shell_blocks(text: str) -> list[str]:
    blocks, inside, current = [], False, []
    for line in text.splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append("\n".join(current).strip())
                current = []
            inside = not inside
        elif inside:
            current.append(line)
    return blocks


def test_ci_runs_the_readme_test_command() -> None:
    blocks = _shell_blocks((REPO / "README.md").read_text())
    assert len(blocks) >= 2, "README must open with two commands: main job, tests"
    test_command = blocks[1]
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_command_installs_and_runs_crashkit() -> None:
    main_command = _shell_blocks((REPO / "README.md").read_text())[0]
    assert "pip install" in main_command and "crashkit" in main_command
