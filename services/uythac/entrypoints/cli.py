"""The `uythac` command: parses arguments into settings and calls `bootstrap`; no domain logic lives here.

Every command's failure is one line on stderr and a non-zero exit: 2 for what the caller can fix (a setting,
a scorecard, a store that is missing or of another layout, a folder that does not exist, a broker that does
not answer), 1 for input that cannot be read and for events refused (docs/operations.md, "Commands").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uythac import bootstrap, logs, settings
from uythac.core.report import render
from uythac.entrypoints import progress
from uythac.entrypoints.replay import Summary, check_json_lines, replay
from uythac.errors import BrokerUnavailable, ConfigError, StoreError, StoreUnavailable, UythacError
from uythac.service.processor import Processor
from uythac.service.reports import current_report
from uythac.settings import Settings

if TYPE_CHECKING:
    from uythac.entrypoints.api.auth import ApiKey


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text) if len(text) == 10 else date.fromisoformat("x")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def build_parser(config: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uythac",
        description="30-day inspection flags and entrustment-quality scores for VBSP's entrusted lending.",
        epilog="Settings come from UYTHAC_* environment variables (docs/configuration.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay_cmd = commands.add_parser("replay", help="replay a JSON Lines file of events and write the report")
    replay_cmd.add_argument("events", type=Path, help="EVENTS.jsonl or EVENTS.jsonl.gz")
    replay_cmd.add_argument("--as-of", type=_day, help="score at this day; later events are left out")
    replay_cmd.add_argument("--report", type=Path, required=True, help="where to write the JSON report")
    replay_cmd.add_argument("--rejects", type=Path, help="where to write rejected lines (JSON Lines)")
    replay_cmd.add_argument("--db", help="keep state in this store and continue from it (default: a fresh one)")
    _scorecard(replay_cmd)
    _batch_size(replay_cmd, "replay_batch_size", config.replay_batch_size, "events per transaction, at least")
    replay_cmd.add_argument(
        "--batch-days",
        type=int,
        dest="replay_batch_days",
        default=config.replay_batch_days,
        metavar="D",
        help="business days a transaction covers, at least, up to UYTHAC_REPLAY_BATCH_MAX events (0: --batch-size)",
    )

    report_cmd = commands.add_parser("report", help="print the report of a store at its clock")
    _store(report_cmd, config)
    report_cmd.add_argument("--out", type=Path, help="write to this file instead of standard output")
    _scorecard(report_cmd)

    generate_cmd = commands.add_parser("generate", help="write a synthetic province's events (JSON Lines)")
    generate_cmd.add_argument("--out", type=Path, required=True, help="FILE.jsonl or FILE.jsonl.gz (gzip)")
    generate_cmd.add_argument("--seed", type=int, default=7, help="random seed: the same options, the same bytes")
    generate_cmd.add_argument("--districts", type=int, default=27, help="districts the communes spread over")
    generate_cmd.add_argument(
        "--communes", type=int, help="communes, 4 units each (default 520; with --events: their size is fitted)"
    )
    generate_cmd.add_argument("--months", type=int, default=12, help="months of the scoring window")
    generate_cmd.add_argument("--start", type=_day, default=date(2022, 12, 1), help="first day of the window")
    generate_cmd.add_argument(
        "--events",
        type=int,
        help="about this many lines (within about 15 %%; a province has at least one group "
        "per organization and commune)",
    )

    demo_cmd = commands.add_parser("demo", help="generate a demo province, replay it, show the distribution")
    demo_cmd.add_argument("--dir", type=Path, default=Path("var/demo"), help="where its files go (made if missing)")
    demo_cmd.add_argument("--communes", type=int, default=520, help="size of the province (520: about 2.7 M events)")
    _scorecard(demo_cmd)

    worker_cmd = commands.add_parser("worker", help="consume uythac.events and keep the store up to date")
    _store(worker_cmd, config)
    _kafka(worker_cmd, config)
    worker_cmd.add_argument(
        "--partitions", type=int, default=config.kafka_partitions, help="partitions of the topics it creates"
    )
    worker_cmd.add_argument(
        "--metrics-port", type=int, default=config.worker_metrics_port, help="its /metrics port (0: none)"
    )
    worker_cmd.add_argument("--idle-exit", type=float, help="stop after this many seconds with nothing to read")
    _scorecard(worker_cmd)
    _batch_size(worker_cmd, "batch_size", config.batch_size, "events per transaction, at most")

    publish_cmd = commands.add_parser("publish", help="validate a JSON Lines file and produce it to Kafka")
    publish_cmd.add_argument("events", type=Path, help="EVENTS.jsonl or EVENTS.jsonl.gz (one event per line)")
    _kafka(publish_cmd, config)
    publish_cmd.add_argument("--strict", action="store_true", help="send nothing if any line is invalid")
    publish_cmd.add_argument("--rejects", type=Path, help="write the invalid lines and reasons here")

    tick_cmd = commands.add_parser("tick", help="publish a clock.tick so deadlines mature on quiet days")
    _kafka(tick_cmd, config)
    tick_cmd.add_argument("--date", type=_day, help="the day to tick (default: today in Vietnam)")
    tick_cmd.add_argument("--daily", action="store_true", help="keep running: tick every day after midnight")

    status_cmd = commands.add_parser("status", help="how far the worker's store is behind the events topic")
    _store(status_cmd, config)
    _kafka(status_cmd, config)
    status_cmd.add_argument("--wait", type=float, metavar="SECONDS", help="wait up to this long to catch up")

    table_cmd = commands.add_parser("distribution", help="print units per class by district and org (a table)")
    _store(table_cmd, config)
    _scorecard(table_cmd)

    api_cmd = commands.add_parser("api", help="serve the HTTP API with gunicorn")
    _store(api_cmd, config)
    api_cmd.add_argument("--bind", default=config.api_bind, help=f"host:port (default {config.api_bind})")
    api_cmd.add_argument("--workers", type=int, default=config.api_workers, help="gunicorn worker processes")
    api_cmd.add_argument("--threads", type=int, default=config.api_threads, help="threads per worker")
    _scorecard(api_cmd)

    apikey_cmd = commands.add_parser(
        "apikey",
        help="make an API key (print it once, and its keys-file entry); list or revoke the keys of a keys file",
        description="With --name and --scope: a new key. `apikey list`: the configured keys (never a key or a "
        "whole hash). `apikey revoke NAME`: take a key out of the keys file (the running API applies it on its "
        "reload, SIGHUP).",
    )
    apikey_cmd.add_argument("--name", help="who holds the key (logged with each request)")
    apikey_cmd.add_argument(
        "--scope", help="all, district:<id> or commune:<id>, and/or org:<HND|HPN|HCCB|DTN> (district:D01,org:HND)"
    )
    until = apikey_cmd.add_mutually_exclusive_group()
    until.add_argument(
        "--expires", type=_day, metavar="YYYY-MM-DD", help="the last day the key works (in Vietnam); default never"
    )
    until.add_argument("--days", type=int, metavar="N", help="the key works today and the N-1 days after it")
    keys_file = f"the keys file (default UYTHAC_API_KEYS_FILE: {config.api_keys_file or 'none'})"
    apikey_cmd.add_argument("--keys-file", help="add the new key's entry to this keys file (atomically) as well")
    actions = apikey_cmd.add_subparsers(dest="action", metavar="{list,revoke}")
    list_cmd = actions.add_parser("list", help="the keys of the keys file: name, scope, expiry, a hash prefix")
    list_cmd.add_argument("--keys-file", default=argparse.SUPPRESS, help=keys_file)
    revoke_cmd = actions.add_parser("revoke", help="take every key of this name out of the keys file")
    revoke_cmd.add_argument("revoked", metavar="NAME", help="the key's name (as `apikey list` shows it)")
    revoke_cmd.add_argument("--keys-file", default=argparse.SUPPRESS, help=keys_file)

    db_cmd = commands.add_parser(
        "db", help="the store's table layout: where it stands, or bring it up to this uythac's"
    )
    db_cmd.add_argument("action", choices=("current", "upgrade"), help="current: say it; upgrade: migrate the store")
    _store(db_cmd, config)
    _scorecard(db_cmd)

    schemas_cmd = commands.add_parser(
        "schemas", help="write the JSON Schema file of every event and output message type, and an example of each"
    )
    schemas_cmd.add_argument("--out", type=Path, default=Path("schemas/json"), help="the folder for the schemas")
    schemas_cmd.add_argument("--examples", type=Path, default=Path("schemas/examples"), help="their examples' folder")
    return parser


def _store(command: argparse.ArgumentParser, config: Settings) -> None:
    command.add_argument("--db", default=config.db, help=f"store: SQLite path or SQLAlchemy URL (default {config.db})")


def _scorecard(command: argparse.ArgumentParser) -> None:
    command.add_argument("--scorecard", help="scorecard YAML (default: UYTHAC_SCORECARD, else the packaged one)")


def _batch_size(command: argparse.ArgumentParser, dest: str, default: int, meaning: str) -> None:
    command.add_argument("--batch-size", type=int, dest=dest, default=default, metavar="N", help=meaning)


def _kafka(command: argparse.ArgumentParser, config: Settings) -> None:
    command.add_argument("--bootstrap", default=config.kafka_bootstrap, help="Kafka brokers (host:port,...)")
    command.add_argument("--topic", default=config.kafka_topic, help="the events topic")


def overridden(config: Settings, args: argparse.Namespace) -> Settings:
    """The settings with what the command line gave instead (the flags named as the settings they set)."""
    flags = {
        "db": "db",
        "scorecard": "scorecard",
        "batch_size": "batch_size",
        "replay_batch_size": "replay_batch_size",
        "replay_batch_days": "replay_batch_days",
        "kafka_bootstrap": "bootstrap",
        "kafka_topic": "topic",
        "kafka_partitions": "partitions",
        "worker_metrics_port": "metrics_port",
        "api_bind": "bind",
        "api_workers": "workers",
        "api_threads": "threads",
    }
    given = {name: getattr(args, flag) for name, flag in flags.items() if getattr(args, flag, None) is not None}
    return replace(config, **given)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = settings.load()
    except UythacError as error:
        print(f"uythac: error: {error}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    args = build_parser(config).parse_args(argv)
    try:
        command: Callable[[argparse.Namespace, Settings], int] = COMMANDS[args.command]
        return command(args, overridden(config, args))
    except UythacError as error:
        print(f"uythac: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file that cannot be written (a full disk, no permission): its own words
        print(f"uythac: error: {error}", file=sys.stderr)
        return 1


def _output(path: Path | None) -> None:
    """Refuse, before any work, a file to write in a folder that does not exist (a typo must not make folders)."""
    if path is not None and not path.parent.is_dir():
        raise ConfigError(f"{path}: the folder {path.parent} does not exist")


def _reachable(config: Settings) -> None:
    """Kafka answers within `UYTHAC_KAFKA_CONNECT_TIMEOUT_S`, or one line that names its address."""
    from kafka.errors import KafkaError

    from uythac.adapters.kafka.admin import wait_for_broker

    try:
        wait_for_broker(config.kafka_bootstrap, timeout_s=config.kafka_connect_timeout_s)
    except KafkaError:
        raise BrokerUnavailable(
            f"Kafka at {config.kafka_bootstrap} did not answer within {config.kafka_connect_timeout_s} s: is the "
            "broker running? (--bootstrap or UYTHAC_KAFKA_BOOTSTRAP; `make kafka-up` starts the local one)"
        ) from None


def run_replay(args: argparse.Namespace, config: Settings) -> int:
    card = bootstrap.load_scorecard(config)
    _output(args.report)
    _output(args.rejects)
    with tempfile.TemporaryDirectory(prefix="uythac-") as scratch:
        store = bootstrap.open_store(args.db or str(Path(scratch) / "replay.db"), config)
        try:
            summary = _replay_file(args, bootstrap.processor(config, store, card), config)
            if summary is None:
                return 1
            store.analyze()  # for the API and reports that read this store next
            _write_json(args.report, current_report(store, card))
        finally:
            store.close()
    print(summary.line())
    return 0


def _replay_file(args: argparse.Namespace, processor: Processor, config: Settings) -> Summary | None:
    try:
        check_json_lines(args.events)
        rejects = args.rejects.open("w", encoding="utf-8") if args.rejects else None
        try:
            with _read(args.events, "replay") as read:
                return replay(
                    args.events,
                    processor,
                    as_of=args.as_of,
                    batch_size=config.replay_batch_size,
                    batch_days=config.replay_batch_days,
                    batch_max=config.replay_batch_max,
                    latest=bootstrap.latest_accepted(config),
                    rejects=rejects,
                    progress=read,
                )
        finally:
            if rejects is not None:
                rejects.close()
    except (OSError, EOFError) as error:
        print(f"uythac: cannot read {args.events}: {error}", file=sys.stderr)
        return None


@contextmanager
def _read(path: Path, what: str) -> Iterator[Callable[[int], None]]:
    """Progress over the bytes of an input file (compressed ones by their compressed bytes)."""
    size = path.stat().st_size
    with progress.shown(f"{what} {path.name}", size, "bytes") as update:
        yield lambda done: update(done, size)


def _write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(render(report), encoding="utf-8")


def _current_report(config: Settings) -> dict[str, Any]:
    card = bootstrap.load_scorecard(config)
    store = bootstrap.open_store(config.db, config, existing=True)
    try:
        return current_report(store, card)
    finally:
        store.close()


def run_report(args: argparse.Namespace, config: Settings) -> int:
    _output(args.out)
    text = render(_current_report(config))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def run_generate(args: argparse.Namespace, config: Settings) -> int:
    from uythac.devtools import generate

    _output(args.out)
    shape = {"seed": args.seed, "districts": args.districts, "months": args.months, "start": args.start}
    try:
        if args.events is not None:
            if args.events < 1:
                raise ValueError(f"--events: must be at least 1, not {args.events}")
            generate.GenerateOptions(communes=args.communes or 1, **shape)  # the other options' errors first
            options = generate.options_for_events(args.events, communes=args.communes, **shape)
        else:
            options = generate.GenerateOptions(communes=520 if args.communes is None else args.communes, **shape)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    with progress.shown(f"generate {args.out.name}", 0, "lines") as update:
        summary = generate.write(args.out, options, update)
    print(
        f"wrote {summary.lines} lines to {args.out}: {summary.events} events, {summary.duplicates} duplicates, "
        f"{summary.invalid} invalid, {summary.first_day} to {summary.last_day}"
    )
    if args.events is not None and abs(summary.lines - args.events) > 0.15 * args.events:
        print(
            f"note: {summary.lines} lines, not about {args.events}: {_count(options.communes, 'commune')} of "
            f"{_count(options.months, 'month')} cannot come closer "
            "(from one group per organization to 50 times the usual size)",
            file=sys.stderr,
        )
    return 0


def run_demo(args: argparse.Namespace, config: Settings) -> int:
    from uythac.devtools.generate import GenerateOptions
    from uythac.entrypoints import demo

    try:
        GenerateOptions(communes=args.communes)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return demo.run(Path(args.dir), int(args.communes), config)


def run_schemas(args: argparse.Namespace, config: Settings) -> int:
    from uythac.schemas import jsonschema

    for path in jsonschema.write(args.out, args.examples):
        print(path)
    return 0


def run_worker(args: argparse.Namespace, config: Settings) -> int:
    from prometheus_client import start_http_server

    from uythac.entrypoints import worker as workers

    worker = workers.build(config, idle_exit_s=args.idle_exit)
    try:
        if config.worker_metrics_port:
            start_http_server(config.worker_metrics_port)
        return worker.run()
    finally:
        worker.store.close()


def run_publish(args: argparse.Namespace, config: Settings) -> int:
    """Exit status 0: every line sent and acknowledged; 1: some line invalid or not acknowledged (the first ones
    are printed); 2: nothing could be tried (no such file, not JSON Lines, Kafka unreachable, a bad option)."""
    from uythac.entrypoints.publish import publish

    _output(args.rejects)
    try:
        check_json_lines(args.events)
    except OSError as error:
        raise ConfigError(f"cannot read {args.events}: {error.strerror or error}") from None
    _reachable(config)
    rejects = args.rejects.open("w", encoding="utf-8") if args.rejects else None
    try:
        with _read(args.events, "publish") as read:
            summary = publish(
                args.events,
                config.kafka_bootstrap,
                config.kafka_topic,
                strict=args.strict,
                partitions=config.kafka_partitions,
                latest=bootstrap.latest_accepted(config),
                rejects=rejects,
                progress=read,
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
    for number, reason in summary.first:
        print(f"  line {number}: {reason}")
    if summary.invalid > len(summary.first):
        print(f"  ... and {summary.invalid - len(summary.first)} more" + ("" if args.rejects else " (--rejects FILE)"))
    return 1 if summary.refused or summary.failed or summary.invalid else 0


def run_tick(args: argparse.Namespace, config: Settings) -> int:
    from uythac.entrypoints.publish import daily, tick

    if args.daily:
        return daily(lambda: tick(config.kafka_bootstrap, config.kafka_topic))
    _reachable(config)
    print(tick(config.kafka_bootstrap, config.kafka_topic, args.date).decode())
    return 0


def run_status(args: argparse.Namespace, config: Settings) -> int:
    from uythac.entrypoints import status

    store = bootstrap.open_store(config.db, config, existing=True)
    try:
        _reachable(config)
        if args.wait is None:
            print(status.status(store, config.kafka_bootstrap, config.kafka_topic).line())
            return 0
        return 0 if status.wait(store, config.kafka_bootstrap, config.kafka_topic, args.wait).caught_up else 1
    finally:
        store.close()


def run_distribution(args: argparse.Namespace, config: Settings) -> int:
    from rich.console import Console

    from uythac.entrypoints.terminal import distribution_table

    report = _current_report(config)
    Console().print(distribution_table(report))
    print(f"as of {report['as_of']}: {len(report['flags'])} loans flagged for a missed 30-day inspection")
    return 0


def run_api(args: argparse.Namespace, config: Settings) -> int:
    from uythac.entrypoints.api.auth import load_keys
    from uythac.entrypoints.api.server import serve

    bootstrap.load_scorecard(config)  # a bad scorecard or keys file stops here, not in every worker
    load_keys(config.api_keys_file)
    _refuse_store(config)  # ... and a store missing or needing `uythac db upgrade`
    return serve(config)


def _refuse_store(config: Settings) -> None:
    """A `StoreError` if there is no SQLite store at the path (the worker makes it: a typo must not serve an
    empty province) or the store has tables of another layout than this uythac's (a database down now is the
    API's to wait for: it answers 503 until it is back)."""
    store = bootstrap.open_store(config.db, config, prepare=False, existing=True)
    try:
        found = store.layout()
    except StoreUnavailable:
        return
    finally:
        store.close()
    if found.current not in (None, found.head):
        raise StoreError(f"{config.db}: {found.line}")


def run_apikey(args: argparse.Namespace, config: Settings) -> int:
    from uythac.entrypoints.api import auth

    if args.action is not None:
        path = args.keys_file or config.api_keys_file
        if not path:
            print("uythac: error: no keys file: give --keys-file or set UYTHAC_API_KEYS_FILE", file=sys.stderr)
            return 2
        if args.action == "list":
            _list_keys(auth.load_keys(path))
            return 0
        if not auth.revoke(path, args.revoked):
            print(f"uythac: error: no key named {args.revoked} in {path}", file=sys.stderr)
            return 1
        print(f"revoked {args.revoked} in {path}: send the API a SIGHUP to apply it (`kill -HUP <api pid>`)")
        return 0
    if not args.name or not args.scope:
        print("uythac: error: a new key needs --name and --scope (or: list; revoke NAME)", file=sys.stderr)
        return 2
    if args.days is not None and args.days < 1:
        print(f"uythac: error: --days must be 1 or more, not {args.days}", file=sys.stderr)
        return 2
    expires = args.expires
    if args.days is not None:
        expires = auth.today() + timedelta(days=args.days - 1)
    if expires is not None and expires < auth.today():
        print(f"uythac: error: --expires {expires} is before today ({auth.today()} in Vietnam)", file=sys.stderr)
        return 2
    key = auth.new_key()
    try:
        line = auth.entry(args.name, args.scope, key, expires)
    except ValueError as error:
        print(f"uythac: error: {error}", file=sys.stderr)
        return 2
    if args.keys_file:
        auth.add(args.keys_file, args.name, line)
    print(key)
    print(f"# the key above is shown once: hand it to {args.name} and keep no other copy; the server keeps its hash")
    if args.keys_file:
        print(f"# added to {args.keys_file}; send the API a SIGHUP to apply it:")
    else:
        print("# add this entry under `keys:` in the keys file (UYTHAC_API_KEYS_FILE), then send the API a SIGHUP:")
    print(line, end="")
    return 0


def _list_keys(keys: dict[str, ApiKey]) -> None:
    """One line per key: name, scope, expiry and the first 8 hex digits of its hash (to tell two keys apart)."""
    print(f"{'NAME':<24} {'SCOPE':<28} {'EXPIRES':<12} HASH")
    for hashed, key in sorted(keys.items(), key=lambda item: item[1].name):
        expires = "never" if key.expires is None else key.expires.isoformat() + (" (expired)" if key.expired() else "")
        print(f"{key.name:<24} {key.scope:<28} {expires:<12} {hashed[:8]}…")


def run_db(args: argparse.Namespace, config: Settings) -> int:
    """`db current` says the store's layout; `db upgrade` brings it to this uythac's in one transaction (the
    step to layout 5 works out the inspection duties with the store's scorecard: `--scorecard`)."""
    if "://" not in config.db and not Path(config.db).is_file():
        raise StoreError(f"{config.db}: no store there (give its path with --db or UYTHAC_DB)")
    store = bootstrap.open_store(config.db, config, prepare=False)
    try:
        if args.action == "current":
            print(store.layout().line)
            return 0
        before = store.upgrade(bootstrap.load_scorecard(config))
    finally:
        store.close()
    if before.current == before.head:
        print(f"layout {before.head}: already the newest")
    else:
        print(f"layout {before.current or 'none (empty)'} upgraded to {before.head}")
    return 0


COMMANDS = {
    "db": run_db,
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
