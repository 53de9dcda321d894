"""The `uythac` command: parses arguments and calls the application; no domain logic lives here."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from uythac import logs, scorecard, settings, views
from uythac.errors import UythacError
from uythac.processor import Processor
from uythac.replay import Summary, replay
from uythac.store import Store


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text) if len(text) == 10 else date.fromisoformat("x")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def build_parser(config: settings.Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uythac",
        description="30-day inspection flags and entrustment-quality scores for VBSP's entrusted lending.",
        epilog="Settings come from UYTHAC_* environment variables (see README, Configuration).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay_cmd = commands.add_parser("replay", help="replay a JSON Lines file of events and write the report")
    replay_cmd.add_argument("events", type=Path, help="EVENTS.jsonl or EVENTS.jsonl.gz")
    replay_cmd.add_argument("--as-of", type=_day, help="score at this day; later events are left out")
    replay_cmd.add_argument("--report", type=Path, required=True, help="where to write the JSON report")
    replay_cmd.add_argument("--rejects", type=Path, help="where to write rejected lines (JSON Lines)")
    replay_cmd.add_argument("--db", help="keep state in this store and continue from it (default: a fresh one)")
    _common(replay_cmd, config)

    report_cmd = commands.add_parser("report", help="print the report of a store at its clock")
    report_cmd.add_argument("--db", default=config.db, help=f"store (default {config.db})")
    report_cmd.add_argument("--out", type=Path, help="write to this file instead of standard output")
    report_cmd.add_argument("--scorecard", type=Path, default=config.scorecard_path)

    generate_cmd = commands.add_parser("generate", help="write a synthetic province's events (JSON Lines)")
    generate_cmd.add_argument("--out", type=Path, required=True, help="FILE.jsonl or FILE.jsonl.gz")
    generate_cmd.add_argument("--seed", type=int, default=7)
    generate_cmd.add_argument("--districts", type=int, default=27)
    generate_cmd.add_argument("--communes", type=int, default=520)
    generate_cmd.add_argument("--months", type=int, default=12)
    generate_cmd.add_argument("--start", type=_day, default=date(2022, 12, 1))
    generate_cmd.add_argument("--events", type=int, help="aim for about this many events (sets the size)")

    demo_cmd = commands.add_parser("demo", help="generate a demo province, replay it, show the distribution")
    demo_cmd.add_argument("--dir", type=Path, default=Path("var/demo"))
    demo_cmd.add_argument("--communes", type=int, default=520)

    worker_cmd = commands.add_parser("worker", help="consume uythac.events and keep the store up to date")
    worker_cmd.add_argument("--db", default=config.db, help=f"store (default {config.db})")
    worker_cmd.add_argument("--bootstrap", default=config.kafka_bootstrap)
    worker_cmd.add_argument("--topic", default=config.kafka_topic)
    worker_cmd.add_argument("--partitions", type=int, default=config.kafka_partitions)
    worker_cmd.add_argument("--metrics-port", type=int, default=config.worker_metrics_port)
    worker_cmd.add_argument("--idle-exit", type=float, help="stop after this many seconds with nothing to read")
    _common(worker_cmd, config)

    publish_cmd = commands.add_parser("publish", help="validate a JSON Lines file and produce it to Kafka")
    publish_cmd.add_argument("events", type=Path)
    publish_cmd.add_argument("--bootstrap", default=config.kafka_bootstrap)
    publish_cmd.add_argument("--topic", default=config.kafka_topic)
    publish_cmd.add_argument("--strict", action="store_true", help="send nothing if any line is invalid")
    publish_cmd.add_argument("--rejects", type=Path, help="write the invalid lines and reasons here")

    tick_cmd = commands.add_parser("tick", help="publish a clock.tick so deadlines mature on quiet days")
    tick_cmd.add_argument("--bootstrap", default=config.kafka_bootstrap)
    tick_cmd.add_argument("--topic", default=config.kafka_topic)
    tick_cmd.add_argument("--date", type=_day, help="the day to tick (default: today in Vietnam)")
    tick_cmd.add_argument("--daily", action="store_true", help="keep running: tick every day after midnight")

    status_cmd = commands.add_parser("status", help="how far the worker's store is behind the events topic")
    status_cmd.add_argument("--db", default=config.db, help=f"store (default {config.db})")
    status_cmd.add_argument("--bootstrap", default=config.kafka_bootstrap)
    status_cmd.add_argument("--topic", default=config.kafka_topic)
    status_cmd.add_argument("--wait", type=float, metavar="SECONDS", help="wait up to this long to catch up")

    table_cmd = commands.add_parser("distribution", help="print units per class by district and org (a table)")
    table_cmd.add_argument("--db", default=config.db, help=f"store (default {config.db})")
    table_cmd.add_argument("--scorecard", type=Path, default=config.scorecard_path)

    api_cmd = commands.add_parser("api", help="serve the HTTP API with gunicorn")
    api_cmd.add_argument("--db", default=config.db, help=f"store (default {config.db})")
    api_cmd.add_argument("--bind", default=config.api_bind, help=f"host:port (default {config.api_bind})")
    api_cmd.add_argument("--workers", type=int, default=config.api_workers, help="gunicorn worker processes")
    api_cmd.add_argument("--threads", type=int, default=config.api_threads, help="threads per worker")
    api_cmd.add_argument("--scorecard", type=Path, default=config.scorecard_path)

    apikey_cmd = commands.add_parser("apikey", help="make an API key: print it once, and its keys-file entry")
    apikey_cmd.add_argument("--name", required=True, help="who holds the key (logged with each request)")
    apikey_cmd.add_argument("--scope", required=True, help="all, district:<district_id> or commune:<commune_id>")

    schemas_cmd = commands.add_parser("schemas", help="write the JSON Schema file of every event type")
    schemas_cmd.add_argument("--out", type=Path, default=Path("schemas/json"))
    return parser


def _common(command: argparse.ArgumentParser, config: settings.Settings) -> None:
    command.add_argument("--scorecard", type=Path, default=config.scorecard_path, help="scorecard YAML")
    command.add_argument("--batch-size", type=int, default=config.batch_size, help="events per transaction")


def main(argv: Sequence[str] | None = None) -> int:
    config = settings.load()
    logs.configure(config.log_level)
    args = build_parser(config).parse_args(argv)
    try:
        command: Callable[[argparse.Namespace, settings.Settings], int] = COMMANDS[args.command]
        return command(args, config)
    except UythacError as error:
        print(f"uythac: error: {error}", file=sys.stderr)
        return 2


def run_replay(args: argparse.Namespace, config: settings.Settings) -> int:
    card = scorecard.load(args.scorecard)
    with tempfile.TemporaryDirectory(prefix="uythac-") as scratch:
        store = Store.at(args.db or Path(scratch) / "replay.db")
        try:
            summary = _replay_file(args, Processor(store, card, config.reports_months, config.cache_entities))
            if summary is None:
                return 1
            store.analyze()  # for the API and reports that read this store next
            _write_json(args.report, views.current_report(store, card))
        finally:
            store.close()
    print(summary.line())
    return 0


def _replay_file(args: argparse.Namespace, processor: Processor) -> Summary | None:
    try:
        rejects = args.rejects.open("w", encoding="utf-8") if args.rejects else None
        try:
            with _progress(args.events) as progress:
                return replay(
                    args.events,
                    processor,
                    as_of=args.as_of,
                    rejects=rejects,
                    batch_size=args.batch_size,
                    progress=progress,
                )
        finally:
            if rejects is not None:
                rejects.close()
    except (OSError, EOFError) as error:
        print(f"uythac: cannot read {args.events}: {error}", file=sys.stderr)
        return None


@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over the input's bytes, only when a person watches a terminal."""
    if not sys.stderr.isatty() or not path.is_file():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"replay {path.name}", total=path.stat().st_size)
        yield lambda done: bar.update(task, completed=done)


def _write_json(path: Path, report: dict[str, Any]) -> None:
    from uythac.report import render

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")


def run_report(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac.report import render

    card = scorecard.load(args.scorecard)
    store = Store.at(args.db)
    try:
        text = render(views.current_report(store, card))
    finally:
        store.close()
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def run_generate(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac import generate

    shape = {"seed": args.seed, "districts": args.districts, "months": args.months, "start": args.start}
    if args.events:
        options = generate.options_for_events(args.events, **shape)
    else:
        options = generate.GenerateOptions(communes=args.communes, **shape)
    summary = generate.write(args.out, options)
    print(
        f"wrote {summary.lines} lines to {args.out}: {summary.events} events, {summary.duplicates} duplicates, "
        f"{summary.invalid} invalid, {summary.first_day} to {summary.last_day}"
    )
    return 0


def run_demo(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac import demo

    return demo.run(Path(args.dir), int(args.communes))


def run_schemas(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac.schemas import jsonschema

    for path in jsonschema.write(args.out):
        print(path)
    return 0


def run_worker(args: argparse.Namespace, config: settings.Settings) -> int:
    from prometheus_client import start_http_server

    from uythac.outputs import Topics
    from uythac.worker import Worker, WorkerConfig

    if args.metrics_port:
        start_http_server(args.metrics_port)
    worker_config = WorkerConfig(
        bootstrap=args.bootstrap,
        topic=args.topic,
        partitions=args.partitions,
        batch_size=args.batch_size,
        group_id=config.kafka_group,
        session_timeout_ms=config.kafka_session_timeout_ms,
        outputs=Topics(config.kafka_flags_topic, config.kafka_scores_topic),
        idle_exit_s=args.idle_exit,
        reports_months=config.reports_months,
        cache_entities=config.cache_entities,
        log_level=config.log_level,
        stall_s=config.worker_stall_s,
    )
    store = Store.at(args.db)
    try:
        return Worker(worker_config, store, scorecard.load(args.scorecard)).run()
    finally:
        store.close()


def run_publish(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac.publish import publish

    rejects = args.rejects.open("w", encoding="utf-8") if args.rejects else None
    try:
        with _progress(args.events) as progress:
            summary = publish(
                args.events,
                args.bootstrap,
                args.topic,
                strict=args.strict,
                partitions=config.kafka_partitions,
                rejects=rejects,
                progress=progress,
            )
    except OSError as error:
        print(f"uythac: cannot read {args.events}: {error}", file=sys.stderr)
        return 1
    finally:
        if rejects is not None:
            rejects.close()
    print(summary.line())
    for field_name, count in sorted(summary.reasons.items()):
        print(f"  {count} rejected for {field_name}")
    return 1 if summary.refused or summary.failed else 0


def run_tick(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac.publish import tick
    from uythac.ticker import daily

    if args.daily:
        return daily(lambda: tick(args.bootstrap, args.topic))
    print(tick(args.bootstrap, args.topic, args.date).decode())
    return 0


def run_status(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac import status

    store = Store.at(args.db)
    try:
        if args.wait is None:
            print(status.status(store, args.bootstrap, args.topic).line())
            return 0
        return 0 if status.wait(store, args.bootstrap, args.topic, args.wait).caught_up else 1
    finally:
        store.close()


def run_distribution(args: argparse.Namespace, config: settings.Settings) -> int:
    from rich.console import Console

    from uythac.tables import distribution_table

    store = Store.at(args.db)
    try:
        report = views.current_report(store, scorecard.load(args.scorecard))
    finally:
        store.close()
    Console().print(distribution_table(report))
    print(f"as of {report['as_of']}: {len(report['flags'])} loans flagged for a missed 30-day inspection")
    return 0


def run_api(args: argparse.Namespace, config: settings.Settings) -> int:
    from dataclasses import replace

    from uythac.api.auth import load_keys
    from uythac.api.server import serve

    served = replace(
        config,
        db=args.db,
        api_bind=args.bind,
        api_workers=args.workers,
        api_threads=args.threads,
        scorecard=str(args.scorecard) if args.scorecard else "",
    )
    scorecard.load(served.scorecard_path)  # a bad scorecard or keys file stops here, not in every worker
    load_keys(served.api_keys_file)
    return serve(served)


def run_apikey(args: argparse.Namespace, config: settings.Settings) -> int:
    from uythac.api.auth import entry, new_key

    key = new_key()
    try:
        line = entry(args.name, args.scope, key)
    except ValueError as error:
        print(f"uythac: error: {error}", file=sys.stderr)
        return 2
    print(key)
    print(f"# the key above is shown once: hand it to {args.name} and keep no other copy; the server keeps its hash")
    print("# add this entry under `keys:` in the keys file (UYTHAC_API_KEYS_FILE), then send the API a SIGHUP:")
    print(line, end="")
    return 0


COMMANDS = {
    "api": run_api,
    "apikey": run_apikey,
    "status": run_status,
    "distribution": run_distribution,
    "worker": run_worker,
    "publish": run_publish,
    "tick": run_tick,
    "replay": run_replay,
    "report": run_report,
    "generate": run_generate,
    "demo": run_demo,
    "schemas": run_schemas,
}


if __name__ == "__main__":
    sys.exit(main())
