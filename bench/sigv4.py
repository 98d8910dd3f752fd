"""What SigV4 verification costs (issue 16): `conveyor server` on sqlite with and without `--credentials`, the same
load generator signing every request in both runs (bench/run.py's, with a lean SigV4 signer), so the difference is
the server's verification and permission check alone.

Reported per run: SendMessageBatch (10 messages of 128 bytes) and ReceiveMessage(10) + DeleteMessageBatch messages/s,
and the server's CPU µs per message; and the ratio with/without (the target: within 15%). Alternates the two runs
(`--rounds`, 3 by default) to spread the machine's noise over both. Loopback only; each phase is bounded in count
and time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from run import LoadGenerator, ServerProcess, _create_queue

KEY = ("AKIABENCH00000000001", "bench-secret-0000000000000001")
CREDENTIALS = f"""\
principals:
  bench:
    access_key_id: {KEY[0]}
    secret_access_key: {KEY[1]}
    policy: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "sqs:*", Resource: "*"}}]}}
"""


def one_run(folder: Path, gen: LoadGenerator, checked: bool, opts: argparse.Namespace) -> dict[str, float]:
    credentials = None
    if checked:
        credentials = folder / "credentials.yaml"
        credentials.write_text(CREDENTIALS)
        credentials.chmod(0o600)
    data = Path(tempfile.mkdtemp(dir=folder, prefix="data-"))
    with ServerProcess("sqlite", data, credentials=credentials, name=f"sigv4-{'on' if checked else 'off'}") as server:
        queue_url = asyncio.run(_create_queue(server.url, "bench", KEY))
        per_worker = opts.messages // 10 // opts.workers
        send_args = [
            (server.url, queue_url, per_worker, opts.seconds, opts.concurrency, 128, 0, KEY)
            for _ in range(opts.workers)
        ]
        send = gen.run([server], "sqlite", "send", send_args)
        receive_args = [(server.url, queue_url, opts.seconds * 2, opts.concurrency, KEY) for _ in range(opts.workers)]
        receive = gen.run([server], "sqlite", "receive", receive_args)
    for phase in (send, receive):
        if phase.errors:
            raise SystemExit(f"{phase.name} with credentials={checked}: {phase.errors} errors (see the server log)")
    return {
        "send": send.msgs_per_s,
        "receive": receive.msgs_per_s,
        "send_cpu_us": send.server_cpu_s / send.messages * 1e6,
        "receive_cpu_us": receive.server_cpu_s / receive.messages * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    opts = parser.parse_args()
    gen = LoadGenerator(opts.workers)
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:
        with tempfile.TemporaryDirectory(prefix="conveyor-sigv4-") as folder:
            for _ in range(opts.rounds):
                for checked in (False, True):
                    runs[checked].append(one_run(Path(folder), gen, checked, opts))
    finally:
        gen.close()
    print(f"{'':24}{'off':>12}{'on':>12}{'on / off':>12}")
    for figure, unit in (
        ("send", "msgs/s"),
        ("receive", "msgs/s"),
        ("send_cpu_us", "µs/msg"),
        ("receive_cpu_us", "µs/msg"),
    ):
        off = statistics.median(r[figure] for r in runs[False])
        on = statistics.median(r[figure] for r in runs[True])
        print(f"{figure + ' (' + unit + ')':24}{off:>12.1f}{on:>12.1f}{on / off:>12.3f}")
    for figure in ("send", "receive"):
        off = statistics.median(r[figure] for r in runs[False])
        on = statistics.median(r[figure] for r in runs[True])
        verdict = "within" if on >= 0.85 * off else "NOT within"
        print(f"{figure}: with verification {on / off:.1%} of the throughput without ({verdict} the 15% target)")


if __name__ == "__main__":
    main()
