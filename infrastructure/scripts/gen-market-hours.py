#!/usr/bin/python3
"""gen-market-hours.py - turn infrastructure/prometheus/market_hours.yml (the SLO's trading
calendar: time zone, weekly sessions, closed dates) into the recording-rule group
`market_hours` of infrastructure/prometheus/recording_rules.yml.

PromQL's date functions (hour(), minute(), day_of_week(), ...) read a timestamp in UTC.  The
generator therefore writes the zone's UTC offset as a base plus one step per transition of the
zone in the configured years, taken from the system's tzdata (Python's zoneinfo), so daylight
saving time switches at the right second:

  market:local_time:seconds   vector(time() + offset(time())): local wall-clock time written as
                              if it were UTC, so hour()/minute()/day_of_week() of it are local
  market:open:bool            1 inside a session on a day that is not a closed date, else 0
  market:calendar_valid_until:timestamp  the end of the last year with written transitions

Usage: gen-market-hours.py [--root DIR] (--write | --check | --print)
  --write   rewrite the group in recording_rules.yml (between its BEGIN/END marker lines)
  --check   exit 1 when recording_rules.yml's group differs from what the calendar gives,
            naming the file and first differing line (the test monitoring.market_hours_current)
  --print   print the group
Exit codes: 0 ok, 1 out of date, 2 usage or a bad calendar (file:line: field: problem).
"""
import datetime as dt
import os
import re
import sys
import zoneinfo

import yaml

DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # PromQL day_of_week(): 0 = Sunday
BEGIN = "  # BEGIN market_hours"
END = "  # END market_hours"
CLOCK = "market:local_time:seconds"


class CalendarError(Exception):
    pass


def _fail(path, node, field, msg):
    line = node.start_mark.line + 1 if node is not None else 1
    raise CalendarError(f"{path}:{line}: {field}: {msg}")


def _map(node):
    return {k.value: (k, v) for k, v in node.value} if isinstance(node, yaml.MappingNode) else None


def _hhmm(path, node, field):
    if not isinstance(node, yaml.ScalarNode) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", node.value):
        _fail(path, node, field, f"expected a time \"HH:MM\" (00:00 to 23:59), got {node.value!r}"
              if isinstance(node, yaml.ScalarNode) else "expected a time \"HH:MM\"")
    h, m = node.value.split(":")
    return int(h) * 60 + int(m)


def load_calendar(path):
    """The calendar of market_hours.yml, validated: errors name file, line and field."""
    with open(path, encoding="utf-8") as f:
        try:
            root = yaml.compose(f)
        except yaml.YAMLError as e:
            raise CalendarError(f"{path}: not YAML: {e}")
    top = _map(root)
    if top is None:
        _fail(path, root, "(top)", "expected a mapping")
    known = {"time_zone", "years", "sessions", "closed_dates"}
    for k, (kn, _) in top.items():
        if k not in known:
            _fail(path, kn, k, f"unknown field (known: {', '.join(sorted(known))})")
    for k in ("time_zone", "years", "sessions"):
        if k not in top:
            _fail(path, root, k, "missing")

    tzn = top["time_zone"][1]
    try:
        tz = zoneinfo.ZoneInfo(tzn.value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        _fail(path, tzn, "time_zone", f"{tzn.value!r} is not a time zone of the system's tzdata")

    yn = top["years"][1]
    if (not isinstance(yn, yaml.SequenceNode) or len(yn.value) != 2
            or not all(re.fullmatch(r"\d{4}", n.value or "") for n in yn.value)):
        _fail(path, yn, "years", "expected [FIRST, LAST], two years such as [2024, 2040]")
    y0, y1 = (int(n.value) for n in yn.value)
    if not 1970 <= y0 <= y1 <= 2200:
        _fail(path, yn, "years", f"expected 1970 <= FIRST <= LAST <= 2200, got [{y0}, {y1}]")

    sn = top["sessions"][1]
    if not isinstance(sn, yaml.SequenceNode) or not sn.value:
        _fail(path, sn, "sessions", "expected a non-empty list of {days, open, close}")
    sessions = []
    per_day = {d: [] for d in range(7)}
    for i, s in enumerate(sn.value):
        field = f"sessions[{i}]"
        m = _map(s)
        if m is None or set(m) != {"days", "open", "close"}:
            _fail(path, s, field, "expected exactly the fields days, open, close")
        dn = m["days"][1]
        if not isinstance(dn, yaml.SequenceNode) or not dn.value:
            _fail(path, dn, f"{field}.days", "expected a non-empty list of mon..sun")
        days = []
        for d in dn.value:
            if d.value not in DAYS:
                _fail(path, d, f"{field}.days", f"{d.value!r} is not one of {', '.join(DAYS)}")
            days.append(DAYS.index(d.value))
        o = _hhmm(path, m["open"][1], f"{field}.open")
        c = _hhmm(path, m["close"][1], f"{field}.close")
        if o >= c:
            _fail(path, m["close"][1], f"{field}.close", "must be after open (no session across midnight)")
        for d in days:
            for (po, pc) in per_day[d]:
                if o < pc and po < c:
                    _fail(path, s, field, f"overlaps another session on {DAYS[d]}")
            per_day[d].append((o, c))
        sessions.append((sorted(set(days)), o, c))

    closed = []
    if "closed_dates" in top:
        cn = top["closed_dates"][1]
        if not isinstance(cn, yaml.SequenceNode):
            _fail(path, cn, "closed_dates", "expected a list of dates YYYY-MM-DD")
        for i, d in enumerate(cn.value):
            try:
                closed.append(dt.date.fromisoformat(d.value))
            except (TypeError, ValueError):
                _fail(path, d, f"closed_dates[{i}]", f"{d.value!r} is not a date YYYY-MM-DD")
        if len(set(closed)) != len(closed):
            _fail(path, cn, "closed_dates", "a date is listed twice")
    return {"tz": tz, "tz_name": tzn.value, "years": (y0, y1), "sessions": sessions,
            "closed": sorted(closed)}


def _offset(tz, t):
    return int(dt.datetime.fromtimestamp(t, tz).utcoffset().total_seconds())


def transitions(tz, y0, y1):
    """(base offset at the start of y0, [(unix time, offset from then on)], end of y1)."""
    start = int(dt.datetime(y0, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    end = int(dt.datetime(y1 + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    base = _offset(tz, start)
    out, cur, t = [], base, start
    step = 3600
    while t < end:
        nxt = min(t + step, end)
        off = _offset(tz, nxt)
        if off != cur:
            lo, hi = t, nxt  # offset(lo) == cur, offset(hi) != cur: find the first second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, mid) == cur:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, _offset(tz, hi)))
            cur = _offset(tz, hi)
        t = nxt
    return base, out, end


def _day_ranges(days):
    """Sorted day numbers as contiguous runs: [1,2,3,4,5] -> [(1, 5)]."""
    runs = []
    for d in days:
        if runs and runs[-1][1] == d - 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return [tuple(r) for r in runs]


def expressions(cal):
    """The three rules' expressions, in order: [(record, expr)]."""
    base, steps, end = transitions(cal["tz"], *cal["years"])
    terms = [f"{base}"]
    prev = base
    for t, off in steps:
        delta = off - prev
        sign = "+" if delta > 0 else "-"
        terms.append(f"{sign} {abs(delta)} * (time() >= bool {t})")
        prev = off
    clock = "vector(time() + " + " ".join(terms) + ")"

    L = CLOCK
    minute_of_day = f"(hour({L}) * 60 + minute({L}))"
    parts = []
    for days, o, c in cal["sessions"]:
        for a, b in _day_ranges(days):
            if a == b:
                dsel = f"(day_of_week({L}) == bool {a})"
            else:
                dsel = f"(day_of_week({L}) >= bool {a}) * (day_of_week({L}) <= bool {b})"
            parts.append(f"{dsel} * ({minute_of_day} >= bool {o}) * ({minute_of_day} < bool {c})")
    is_open = " + ".join(f"({p})" for p in parts)
    if cal["closed"]:
        closed = " + ".join(
            f"(year({L}) == bool {d.year}) * (month({L}) == bool {d.month})"
            f" * (day_of_month({L}) == bool {d.day})" for d in cal["closed"])
        is_open = f"({is_open}) * (1 - ({closed}))"
    return [(CLOCK, clock), ("market:open:bool", is_open),
            ("market:calendar_valid_until:timestamp", f"vector({end})")]


def render(cal, source_name):
    y0, y1 = cal["years"]
    lines = [
        BEGIN + f" (generated by infrastructure/scripts/gen-market-hours.py from {source_name}:",
        "  # do not edit; change the calendar and run the script with --write)",
        "  - name: market_hours",
        "    rules:",
        f"      # Local wall-clock time in {cal['tz_name']} as a unix timestamp: the UTC offset is a base",
        f"      # plus one step per transition of the zone in {y0}-{y1} (system tzdata).",
    ]
    for rec, expr in expressions(cal):
        if rec == "market:open:bool":
            lines.append("      # 1 while a weekly session runs on a day that is not a closed date, else 0.")
        elif rec == "market:calendar_valid_until:timestamp":
            lines.append(f"      # The end of {y1}: past it the offset above is frozen (MarketCalendarExpiring).")
        lines.append(f"      - record: {rec}")
        lines.append(f"        expr: {expr}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def split_rules_file(path):
    """recording_rules.yml as (before, generated block, after); the markers must be there once."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    b = [i for i, l in enumerate(lines) if l.startswith(BEGIN)]
    e = [i for i, l in enumerate(lines) if l.rstrip("\n") == END]
    if len(b) != 1 or len(e) != 1 or e[0] < b[0]:
        raise CalendarError(f"{path}: expected one line starting '{BEGIN.strip()}' and one "
                            f"'{END.strip()}' after it (found {len(b)} and {len(e)})")
    return "".join(lines[:b[0]]), "".join(lines[b[0]:e[0] + 1]), "".join(lines[e[0] + 1:]), b[0] + 1


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    mode = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--root" and args:
            root = args.pop(0)
        elif a in ("--write", "--check", "--print") and mode is None:
            mode = a
        else:
            print(__doc__.strip().split("\n\n")[-1].split("Exit codes")[0].strip(), file=sys.stderr)
            return 2
    if mode is None:
        print("gen-market-hours.py: one of --write, --check, --print is required", file=sys.stderr)
        return 2
    cal_path = os.path.join(root, "infrastructure/prometheus/market_hours.yml")
    rules_path = os.path.join(root, "infrastructure/prometheus/recording_rules.yml")
    try:
        cal = load_calendar(cal_path)
        block = render(cal, "infrastructure/prometheus/market_hours.yml")
        if mode == "--print":
            sys.stdout.write(block)
            return 0
        before, current, after, first_line = split_rules_file(rules_path)
    except (CalendarError, OSError) as e:
        print(f"gen-market-hours.py: {e}", file=sys.stderr)
        return 2
    if mode == "--write":
        if current != block:
            tmp = rules_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(before + block + after)
            os.replace(tmp, rules_path)
            print(f"gen-market-hours.py: rewrote group market_hours in {rules_path}")
        return 0
    if current == block:
        return 0
    cur_l, new_l = current.splitlines(), block.splitlines()
    for i in range(max(len(cur_l), len(new_l))):
        a = cur_l[i] if i < len(cur_l) else "(end of group)"
        b = new_l[i] if i < len(new_l) else "(end of group)"
        if a != b:
            print(f"{rules_path}:{first_line + i}: group market_hours is not what {cal_path} gives "
                  f"(run infrastructure/scripts/gen-market-hours.py --write)\n"
                  f"  found:    {a[:160]}\n  expected: {b[:160]}", file=sys.stderr)
            break
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
