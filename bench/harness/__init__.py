"""What the benchmarks share; each benchmark imports this and the app, never another benchmark.

* base: ROOT, BIN, BenchError, log / logger (stderr), free_port;
* processes: Processes / PROCESSES (servers in their own process groups), run_cli,
  app_environment, wait_ready, log_tail, error_lines, gunicorn;
* instance: caller_environment, app_settings, prepare_instance, MAIL_DOMAIN, MAIL_FROM;
* client: KioskClient (one kiosk or person over HTTP) and the page regexes;
* flood: Flood (wrong-password sign-ins from a process of their own);
* mail: MailRecorder, Mailbox / Mail, BlackHole, SmtpSwitch, start_smtp;
* stats: percentile, summary_ms, rate_of, cpu_seconds;
* run: run_bench (one JSON line on stdout, under a watchdog);
* browser: CHROMIUM, CHROMIUM_ARGS (also used by tests/browser).

A benchmark imports it as `bench.harness` when run as a module and as `harness` when run as
`python bench/<name>.py` (then bench/ itself is on sys.path):

    try:
        from bench.harness import ...
    except ModuleNotFoundError:
        from harness import ...
"""

from .base import BIN, ROOT, BenchError, free_port, log, logger
from .browser import CHROMIUM, CHROMIUM_ARGS
from .client import CSRF_RE, NONCE_RE, START_TOKEN_RE, KioskClient
from .flood import Flood
from .instance import (
    MAIL_DOMAIN,
    MAIL_FROM,
    PASSED_SETTINGS,
    app_settings,
    caller_environment,
    prepare_instance,
)
from .mail import (
    ACK_LINE,
    MESSAGE_ID_RE,
    BlackHole,
    Mail,
    Mailbox,
    MailRecorder,
    SmtpSwitch,
    start_smtp,
)
from .processes import (
    PROCESSES,
    Processes,
    app_environment,
    error_lines,
    gunicorn,
    log_tail,
    run_cli,
    wait_ready,
)
from .run import run_bench
from .stats import cpu_seconds, percentile, rate_of, summary_ms

__all__ = [
    "ACK_LINE",
    "BIN",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "Flood",
    "CSRF_RE",
    "MAIL_DOMAIN",
    "MAIL_FROM",
    "MESSAGE_ID_RE",
    "NONCE_RE",
    "PASSED_SETTINGS",
    "PROCESSES",
    "ROOT",
    "START_TOKEN_RE",
    "BenchError",
    "BlackHole",
    "KioskClient",
    "Mail",
    "MailRecorder",
    "Mailbox",
    "Processes",
    "SmtpSwitch",
    "app_environment",
    "app_settings",
    "caller_environment",
    "cpu_seconds",
    "error_lines",
    "free_port",
    "gunicorn",
    "log",
    "log_tail",
    "logger",
    "percentile",
    "prepare_instance",
    "rate_of",
    "run_bench",
    "run_cli",
    "start_smtp",
    "summary_ms",
    "wait_ready",
]
