"""Drive a running mediation line the way Twilio does: signed requests, TwiML followed verb by verb.

  python scripts/simulate_call.py --url http://127.0.0.1:5000 1 2 1 "Dana Whitfield" "Main and 5th" 1 "Loud music" 1
  python scripts/simulate_call.py --url https://line.example.gov --interactive
  python scripts/simulate_call.py --url http://127.0.0.1:5000 --script calls/noise.txt

Each positional input answers the next prompt: keys ("1", "9375550123#"), words ("Dana Whitfield"), or "-"
for silence; inputs and options may come in any order. Any other input that starts with a dash ("-x",
"--loud") goes after "--": everything after "--" is an input, e.g.
  python scripts/simulate_call.py --url http://127.0.0.1:5000 1 - 2 -- "-x" "--loud"
A --script file holds the same, one per line (lines starting with # are comments; no "--" needed there).
Settings (TWILIO_AUTH_TOKEN, TWILIO_ACCOUNT_SID, TWILIO_PHONE_NUMBER, PUBLIC_BASE_URL) come
from the environment or .env. Exits 1 if anything happened that Twilio would reject: an error status,
invalid TwiML, an answer slower than 15 seconds, a loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dotenv import load_dotenv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.simulator import (  # noqa: E402
    Dispatcher,
    HttpTransport,
    InteractiveCaller,
    ScriptedCaller,
    SimulatedPhone,
    SpecialistPhone,
)
from voice.simulator.fake_twilio import FakeTwilio  # noqa: E402


def echo(who: str, text: str) -> None:
    if who == "network":
        print(f"   {text if text.startswith('(') else f'({text})'}", flush=True)
    elif who.startswith("to "):
        print(f"   {who[3:]:>14} hears: {text}", flush=True)
    else:
        print(f"   {who:>14}: {text}", flush=True)


def read_script(path: Path) -> list[str]:
    """A caller's inputs from a file: one per line; blank lines and lines starting with # are skipped."""
    # Only whole-line comments: "#" also ends a phone number typed on the keypad (9375550123#).
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Drive a mediation line the way Twilio does.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("inputs", nargs="*",
                        help='what the caller presses or says, in order; "-" is silence; '
                             'inputs that start with another dash go after "--"')
    parser.add_argument("--url", help="where the app listens (default: PUBLIC_BASE_URL)")
    parser.add_argument("--public-base-url", help="the URL Twilio signs (default: PUBLIC_BASE_URL, else --url)")
    parser.add_argument("--from", dest="from_number", default="+19375550123", help="the caller's number")
    parser.add_argument("--auth-token", help="default: TWILIO_AUTH_TOKEN")
    parser.add_argument("--account-sid", help="default: TWILIO_ACCOUNT_SID")
    parser.add_argument("--line", help="the line's number (default: TWILIO_PHONE_NUMBER)")
    parser.add_argument("--dispatch", default=os.environ.get("DISPATCH_TRANSFER_NUMBER", ""),
                        help="answers as 911 dispatch when the app transfers there")
    parser.add_argument("--specialist", action="append", default=[], metavar="NUMBER[=NAME[:KEY]]",
                        help="a specialist phone on the network (KEY they press in the whisper, default 1)")
    parser.add_argument("--script", type=Path, help="a file of inputs, one per line, before any positional ones")
    parser.add_argument("--interactive", action="store_true", help="you are the caller")
    parser.add_argument("--sms", metavar="BODY", help="instead of a call, text BODY to the line from --from")
    parser.add_argument("--fake-twilio-port", type=int,
                        help="also serve a fake Twilio REST API on this port, for the app's outbound calls "
                             "(start the app with TWILIO_API_BASE_URL=http://127.0.0.1:PORT)")
    parser.add_argument("--wait", type=float, default=0, help="with --fake-twilio-port: keep serving this many seconds")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options and inputs in any order; everything after the first "--" is an input, whatever it starts with."""
    argv = list(sys.argv[1:] if argv is None else argv)
    after_dashes: list[str] = []
    if "--" in argv:
        # Split here rather than leave "--" to argparse, whose intermixed parsing drops inputs after it.
        cut = argv.index("--")
        argv, after_dashes = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_intermixed_args(argv)
    args.inputs = [*args.inputs, *after_dashes]
    return args


def main(argv: list[str] | None = None) -> int:
    load_dotenv()
    args = parse_args(argv)
    url = args.url or os.environ.get("PUBLIC_BASE_URL")
    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
    sid = args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32
    line = args.line or os.environ.get("TWILIO_PHONE_NUMBER") or "+19375550100"
    if not url or not token:
        print("simulate_call: need --url (or PUBLIC_BASE_URL) and --auth-token (or TWILIO_AUTH_TOKEN)", file=sys.stderr)
        return 2
    public = (args.public_base_url or os.environ.get("PUBLIC_BASE_URL") or url).rstrip("/")
    network = {args.dispatch: Dispatcher()} if args.dispatch else {}
    for spec in args.specialist:
        number, _, rest = spec.partition("=")
        name, _, key = rest.partition(":")
        network[number] = SpecialistPhone(name or number, accept=key or "1")
    phone = SimulatedPhone(HttpTransport(public, url), token, sid, line, public, network=network, echo=echo)

    if args.sms is not None:
        status, body = phone.send_sms(args.from_number, args.sms)
        print(f"HTTP {status}: {body}")
        return 0 if status == 200 else 1

    try:
        inputs = read_script(args.script) + args.inputs if args.script else args.inputs
    except OSError as error:
        print(f"simulate_call: cannot read {args.script}: {error.strerror}", file=sys.stderr)
        return 2
    fake = None
    if args.fake_twilio_port:
        fake = FakeTwilio(phone, sid, token, line, on_text=lambda t: print(f"   (text to {t['to']}: {t['body']})"))
        try:
            print(f"fake Twilio REST API on {fake.start(port=args.fake_twilio_port)}")
        except OSError as error:
            print(f"simulate_call: cannot serve the fake Twilio API on port {args.fake_twilio_port}: "
                  f"{error.strerror}", file=sys.stderr)
            return 2
    caller = InteractiveCaller() if args.interactive else ScriptedCaller(
        [None if item == "-" else item for item in inputs])
    phone.network.setdefault(args.from_number, ScriptedCaller(label="caller (called back)"))
    record = phone.call_line(args.from_number, caller)
    problems = list(record.problems)
    if fake is not None:
        # The worker places its calls (a callback, say) after the caller hangs up: let them arrive.
        time.sleep(args.wait)
        fake.wait_for_calls(15)
        problems += [p for c in fake.calls if c.record for p in c.record.problems]
        fake.stop()
    slowest = max((e.seconds for e in record.exchanges), default=0)
    print(f"\n{len(record.exchanges)} webhook requests, slowest {slowest * 1000:.0f} ms; call ended: {record.ended_by}")
    if problems:
        print("PROBLEMS Twilio would have had:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("no problems")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
