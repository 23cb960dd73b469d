"""One config loader for every service and the `lob` command.

Each service keeps a `config.yml` next to its code, with nameko's `${VAR:default}` placeholders;
the defaults run everything locally (SQLite files under var/, RabbitMQ on localhost). We reuse
nameko's own YAML loader so `nameko run --config` and `lob` read a file the same way.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

with warnings.catch_warnings():
    # nameko 2.14 imports pkg_resources (deprecated by setuptools); harmless, and noisy in `lob`.
    warnings.simplefilter("ignore")
    from nameko.cli.main import setup_yaml_parser

_parser_ready = False


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a service config file, substituting environment variables."""
    global _parser_ready
    if not _parser_ready:
        setup_yaml_parser()
        _parser_ready = True
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def service_config_path(service: str) -> Path:
    """The config.yml shipped inside a service's package (e.g. registration/config.yml)."""
    return Path(str(resources.files(service) / "config.yml"))


def service_config(service: str) -> dict[str, Any]:
    return load_config(service_config_path(service))
