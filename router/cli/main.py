"""`alert-router` command line. Each subcommand lives with the code it drives; this file only
wires them. Bad input exits with status 2 and a message naming the file and line, never a
traceback."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ground.errors import InputError
from ground.heap import tune_for_large_heaps

# Modules that add their own subcommands with `register(subparsers)`, when present.
PLUGGABLE = (
    "router.cli.cmd_serve",
    "router.cli.cmd_demo",
    "router.cli.cmd_export",
    "router.cli.cmd_topology",
    "router.cli.cmd_slack",
)


def _replay(args: argparse.Namespace) -> int:
    from router.cli.cmd_replay import run_replay

    return run_replay(args.topology or [], args.alerts, args.rules, args.config, args.out, args.events)


def _rules_lint(args: argparse.Namespace) -> int:
    from rules.lint import lint_files

    problems = lint_files(args.files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{len(args.files)} file(s) clean")
    return 0


def _rules_test(args: argparse.Namespace) -> int:
    from rules.ruletest import run_rule_tests

    passed, failed, messages = run_rule_tests(args.files)
    for message in messages:
        print(message, file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alert-router",
        description="Topology-aware alert router and incident correlator for Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser("replay", help="run the engine over a recorded alert stream")
    replay.add_argument(
        "--topology", action="append", help="topology file (KSM text, YAML or JSON); repeatable"
    )
    replay.add_argument("--alerts", required=True, help="recorded stream (JSON Lines), - for stdin")
    replay.add_argument("--rules", action="append", help="rule file; repeatable (default: the bundled pack)")
    replay.add_argument("--config", help="service configuration file (its engine: section is used)")
    replay.add_argument("--out", help="notifications JSONL (default: stdout)")
    replay.add_argument("--events", help="also write every decision event (JSONL) to this file")
    replay.set_defaults(func=_replay)

    rules = sub.add_parser("rules", help="check rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    lint = rules_sub.add_parser("lint", help="validate rule files")
    lint.add_argument("files", nargs="+")
    lint.set_defaults(func=_rules_lint)
    test = rules_sub.add_parser("test", help="run rule unit tests")
    test.add_argument("files", nargs="+")
    test.set_defaults(func=_rules_test)

    for module_name in PLUGGABLE:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    tune_for_large_heaps()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"alert-router: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
