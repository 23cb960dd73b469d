"""The fault suite's shared system (one per run of this folder) and its table of figures."""

from __future__ import annotations

import pytest

from lob_testing.faults import FIGURES, Settings, fault_system


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with fault_system(tmp_path_factory.mktemp("faults")) as running:
        yield running


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault suite figures (docs/reliability.md)")
    write(
        "| case | faults injected | sent | acknowledged | stored | mailed | counted | "
        "duplicates | losses | client retries | time to recover |"
    )
    write("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in FIGURES:
        write(
            f"| {row['case']} | {row['faults']} | {row['sent']} | {row['acknowledged']} | "
            f"{row['stored']} | {row['mailed']} | {row['counted']} | {row['duplicates']} | "
            f"{row['losses']} | {row['client_retries']} | {row['recover_s']:.1f} s |"
        )
    write(f"settings: {FIGURES[0]['settings']}")
