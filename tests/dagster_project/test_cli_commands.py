"""The CLI's command table: every command resolves to its handler, and no handler is left out of it."""

import importlib
import inspect

from dagster_project.cli import COMMAND_MODULES, build_parser, handler


def test_every_command_in_the_table_resolves_to_a_callable_handler() -> None:
    for name in COMMAND_MODULES:
        module, function = handler(name).split(":")
        assert callable(getattr(importlib.import_module(module), function, None)), handler(name)


def test_every_handler_in_the_cli_modules_is_in_the_table() -> None:
    defined = {
        name.removeprefix("command_")
        for module in set(COMMAND_MODULES.values())
        for name, value in inspect.getmembers(importlib.import_module(f"dagster_project.cli.{module}"))
        if name.startswith("command_") and inspect.isfunction(value)
    }
    assert defined == set(COMMAND_MODULES)


def test_every_parsed_command_names_a_handler_from_the_table() -> None:
    parser = build_parser()
    for argv in (["status"], ["models"], ["rules", "check"], ["lake", "maintain"], ["ui"]):
        assert parser.parse_args(argv).handler in {handler(name) for name in COMMAND_MODULES}
