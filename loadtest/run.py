"""`make load`: locust, headless, against a running mlapi; reports under .loadtest/<timestamp>/,
then our own threshold check on the aggregated stats.

    .venv/bin/python loadtest/run.py --host http://127.0.0.1:8000 --users 32 --spawn-rate 8 \
        --duration 60s --max-error-rate 0.01 --max-p95-ms 500 [--shape step] [-- locust args]

Exit status: 0 within the thresholds; 1 over a threshold (one line on stderr says which);
2 when the load test itself could not run (nothing answers at the host, locust failed, a
scenario raised). Locust runs as a subprocess (its gevent monkey-patching stays there); its
output goes to <report dir>/locust.log, its CSV files to <report dir>/locust_*.csv and its HTML
report to <report dir>/report.html. MLAPI_TOKEN (the bearer token) passes through to locust.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
# Locust's exit status when a request failed or a scenario raised (--exit-code-on-error): tells
# "locust ran and saw errors" (we judge those against the thresholds) from locust failing itself.
SAW_ERRORS = 3


def seconds(timespan: str) -> int:
    """Locust's -t format: 90, 90s, 1m30s, 1h."""
    text = timespan.strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", text)
    if not text or not parts:
        raise argparse.ArgumentTypeError(f"{timespan!r}: write the duration as 60, 60s, 1m30s or 1h")
    h, m, s = (int(p or 0) for p in parts.groups())
    return h * 3600 + m * 60 + s


def optional_float(value: str) -> float | None:
    """Empty (an unset make variable) means no threshold."""
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must not be negative")
    return number


def parse_args(argv: list[str]) -> argparse.Namespace:
    locust_extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, locust_extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="loadtest/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="http://127.0.0.1:8000", help="base URL of the API")
    parser.add_argument("--users", type=int, default=32, help="peak concurrent users (-u)")
    parser.add_argument("--spawn-rate", type=float, default=8.0, help="users started per second (-r)")
    parser.add_argument("--duration", default="60s", help="run time (-t): 60, 60s, 1m30s")
    parser.add_argument("--max-error-rate", type=optional_float, default=0.01,
                        help="fail above this share of failed requests (0.01 = 1%%); empty: no check")
    parser.add_argument("--max-p95-ms", type=optional_float, default=None,
                        help="fail when the aggregated p95 is above this many ms; empty: no check")
    parser.add_argument("--shape", choices=["", "step"], default=os.environ.get("LOADTEST_SHAPE", ""),
                        help="step: users grow in steps (LOADTEST_STEP_USERS, LOADTEST_STEP_SECONDS)")
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="where the reports go (default .loadtest/<UTC timestamp>/)")
    parser.add_argument("--locustfile", type=Path, default=LOCUSTFILE)
    args = parser.parse_args(argv)
    if args.users < 1 or args.spawn_rate <= 0:
        parser.error("--users must be at least 1 and --spawn-rate above 0")
    args.run_seconds = seconds(args.duration)
    if args.run_seconds < 1:
        parser.error("--duration must be at least 1 s")
    args.host = args.host.rstrip("/")
    args.locust_extra = locust_extra
    if args.report_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        args.report_dir = HERE.parent / ".loadtest" / stamp
    return args


def host_answers(host: str) -> str | None:
    """None when GET /healthz answers 200; else why not."""
    try:
        with urllib.request.urlopen(host + "/healthz", timeout=10) as resp:
            return None if resp.status == 200 else f"GET /healthz answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"GET /healthz answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"nothing answers at {host} ({getattr(exc, 'reason', exc)}); start it first (make run)"


def run_locust(args: argparse.Namespace) -> int:
    out: Path = args.report_dir
    cmd = [sys.executable, "-m", "locust", "-f", str(args.locustfile), "--headless",
           "-H", args.host, "-u", str(args.users), "-r", str(args.spawn_rate),
           "-t", f"{args.run_seconds}s", "--csv", str(out / "locust"), "--html", str(out / "report.html"),
           "--only-summary", "--exit-code-on-error", str(SAW_ERRORS),
           # Users finish the request they are in when the time is up, rather than being cut off.
           "--stop-timeout", "10", *args.locust_extra]
    env = {**os.environ, "LOADTEST_SHAPE": args.shape}
    # Generous: a busy machine slows start-up and the final report, never the load itself.
    deadline = args.run_seconds + 180
    with (out / "locust.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(deadline)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # locust writes its reports on SIGTERM
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return -1


def read_stats(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _number(value: str | None) -> float | None:
    try:
        return float(value)  # "N/A" when a name has no requests
    except (TypeError, ValueError):
        return None


def summarize(rows: list[dict]) -> tuple[dict, list[dict]]:
    """(the aggregated row, the per-name rows), as numbers."""
    def convert(row: dict) -> dict:
        requests = int(row["Request Count"])
        failures = int(row["Failure Count"])
        return {"method": row["Type"], "name": row["Name"], "requests": requests, "failures": failures,
                "error_rate": failures / requests if requests else 0.0,
                "rps": _number(row["Requests/s"]) or 0.0, "p50_ms": _number(row["50%"]),
                "p95_ms": _number(row["95%"]), "p99_ms": _number(row["99%"]),
                "max_ms": _number(row["Max Response Time"])}

    per_name = [convert(r) for r in rows if r["Name"] != "Aggregated"]
    total = [convert(r) for r in rows if r["Name"] == "Aggregated"]
    if not total:
        raise ValueError("no Aggregated row")
    return total[0], per_name


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def print_table(total: dict, per_name: list[dict], args: argparse.Namespace) -> None:
    print(f"load test: {args.host}, {args.users} users, spawn {args.spawn_rate:g}/s, "
          f"{args.run_seconds} s{', step shape' if args.shape == 'step' else ''}")
    head = f"{'':6} {'name':26} {'requests':>8} {'fails':>6} {'req/s':>7} {'p50':>8} {'p95':>8} {'p99':>8}"
    print(head)
    for r in [*per_name, total]:
        print(f"{r['method']:6} {r['name'][:26]:26} {r['requests']:>8} {r['failures']:>6} "
              f"{r['rps']:>7.1f} {_ms(r['p50_ms']):>8} {_ms(r['p95_ms']):>8} {_ms(r['p99_ms']):>8}")
    print(f"measured: {total['requests']} requests, {total['rps']:.1f} req/s, error rate "
          f"{total['error_rate']:.2%} ({total['failures']} failed), p50 {_ms(total['p50_ms'])}, "
          f"p95 {_ms(total['p95_ms'])}, p99 {_ms(total['p99_ms'])}")


def verdict(total: dict, max_error_rate: float | None, max_p95_ms: float | None) -> str | None:
    """None when the run is within the thresholds; else one line saying which it passed."""
    if total["requests"] == 0:
        return "no request was made"
    over = []
    if max_error_rate is not None and total["error_rate"] > max_error_rate:
        over.append(f"error rate {total['error_rate']:.2%} > {max_error_rate:.2%} (MAX_ERROR_RATE)")
    p95 = total["p95_ms"]
    if max_p95_ms is not None and (p95 is None or p95 > max_p95_ms):
        over.append(f"p95 {_ms(p95)} > {max_p95_ms:g} ms (MAX_P95_MS)")
    return "; ".join(over) or None


def fail(message: str, code: int) -> int:
    print(f"load test FAILED: {message}", file=sys.stderr)
    return code


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problem = host_answers(args.host)
    if problem:
        return fail(problem, 2)
    out: Path = args.report_dir
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    code = run_locust(args)
    stats = out / "locust_stats.csv"
    if code not in (0, SAW_ERRORS) or not stats.exists():
        print(tail(out / "locust.log"), file=sys.stderr)
        why = "did not finish in time" if code == -1 else f"exited {code}"
        return fail(f"locust {why}; its log: {out / 'locust.log'}", 2)
    exceptions = read_stats(out / "locust_exceptions.csv") if (out / "locust_exceptions.csv").exists() else []
    total, per_name = summarize(read_stats(stats))
    print_table(total, per_name, args)
    print(f"reports: {out}/report.html, {out}/locust_stats.csv ({time.monotonic() - started:.0f} s)")
    limits = {"max_error_rate": args.max_error_rate, "max_p95_ms": args.max_p95_ms}
    (out / "summary.json").write_text(json.dumps(
        {"host": args.host, "users": args.users, "spawn_rate": args.spawn_rate,
         "duration_s": args.run_seconds, "shape": args.shape or None, "limits": limits,
         "total": total, "per_name": per_name}, indent=2) + "\n")
    if exceptions:
        first = exceptions[0].get("Message", "").strip()
        return fail(f"a scenario raised {len(exceptions)} kind(s) of exception, first: {first} "
                    f"(see {out / 'locust_exceptions.csv'})", 2)
    over = verdict(total, args.max_error_rate, args.max_p95_ms)
    if over:
        return fail(over, 1)
    checked = [f"error rate <= {args.max_error_rate:.2%}" if args.max_error_rate is not None else "",
               f"p95 <= {args.max_p95_ms:g} ms" if args.max_p95_ms is not None else ""]
    print("load test passed: " + (", ".join(c for c in checked if c) or "no thresholds set"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
