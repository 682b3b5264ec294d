#!/usr/bin/python3
"""test_market_hours.py SRC - the market_hours rules as Prometheus evaluates them at real dates.

promtool's unit tests cannot do this (their clock starts at 1970), so two real Prometheus
servers run the rules' expressions exactly as recording_rules.yml has them:

1. the clock (market:local_time:seconds) by range queries, where time() is each step's
   timestamp: every 15 minutes 3 days either side of every time-zone transition of
   market_hours.yml's years, over each closed date, and over ordinary weeks; each value is
   compared with the local time Python's zoneinfo gives for the same zone;
2. market:open:bool on those clock values: they are written into a TSDB (promtool tsdb
   create-blocks-from openmetrics) one second apart, and the expression is queried over them;
   each value is compared with the calendar (sessions, closed dates) computed in Python.

A fixed UTC-5 clock is run through stage 1 to show that the comparison catches a wrong offset.
"""
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promrun import Prometheus, Tap  # noqa: E402

STEP = 900  # 15 minutes: every session boundary (hh:00, hh:30) falls on a step


def load_generator(src):
    path = os.path.join(src, "infrastructure/scripts/gen-market-hours.py")
    spec = importlib.util.spec_from_file_location("gen_market_hours", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expected(cal, t):
    local = dt.datetime.fromtimestamp(t, cal["tz"])
    dow = (local.weekday() + 1) % 7  # Python Monday=0 -> PromQL Sunday=0
    mod = local.hour * 60 + local.minute
    is_open = any(dow in days and o <= mod < c for days, o, c in cal["sessions"])
    if local.date() in cal["closed"]:
        is_open = False
    return int(local.utcoffset().total_seconds()), int(is_open)


def rules_group(src):
    with open(os.path.join(src, "infrastructure/prometheus/recording_rules.yml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    g = next(g for g in doc["groups"] if g["name"] == "market_hours")
    return {r["record"]: r["expr"] for r in g["rules"]}


def query_range(prom, expr, start, end):
    data = prom.api("/api/v1/query_range", query=expr, start=start, end=end, step=STEP)
    if not data["result"]:
        return {}
    return {int(float(t)): float(v) for t, v in data["result"][0]["values"]}


def main(argv):
    src = os.path.abspath(argv[0])
    tap = Tap()
    gen = load_generator(src)
    cal = gen.load_calendar(os.path.join(src, "infrastructure/prometheus/market_hours.yml"))
    group = rules_group(src)
    clock = group["market:local_time:seconds"]
    is_open = group["market:open:bool"].replace("market:local_time:seconds", f"({clock})")
    y0, y1 = cal["years"]
    _, steps, end_of_years = gen.transitions(cal["tz"], y0, y1)
    exact = all(gen._offset(cal["tz"], t - 1) != off == gen._offset(cal["tz"], t) for t, off in steps)
    tap.ok(exact, f"{len(steps)} transitions of {cal['tz_name']} in {y0}-{y1}, each at the first second of its offset")
    tap.ok(group["market:calendar_valid_until:timestamp"] == f"vector({end_of_years})",
           "market:calendar_valid_until:timestamp is the end of the last year")

    day = 86400
    around = [(t - (t % STEP) - 3 * day, t - (t % STEP) + 3 * day) for t, _ in steps]
    closed = []
    for d in cal["closed"]:
        midnight = int(dt.datetime(d.year, d.month, d.day, tzinfo=cal["tz"]).timestamp())
        closed.append((midnight - day, midnight + 2 * day))
    # ordinary weeks: one in January and one in July of the first, a middle and the last year
    weeks = []
    for y in sorted({y0, (y0 + y1) // 2, y1}):
        for m in (1, 7):
            s = int(dt.datetime(y, m, 10, tzinfo=dt.timezone.utc).timestamp())
            weeks.append((s, s + 7 * day))

    ranges = [("each DST transition (3 days either side)", around), ("each closed date", closed),
              ("ordinary weeks", weeks)]
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {evaluation_interval: 15s}\n")
        points = []  # (t, clock value from Prometheus)
        try:
            with Prometheus(cfg) as prom:
                for name, rs in ranges:
                    bad, n = 0, 0
                    detail = []
                    for start, end in rs:
                        got = query_range(prom, clock, start, end)
                        for t in range(start, end + 1, STEP):
                            off, _ = expected(cal, t)
                            n += 1
                            if got.get(t) != t + off:
                                bad += 1
                                detail.append(f"{dt.datetime.fromtimestamp(t, cal['tz']).isoformat()}: "
                                              f"clock {got.get(t)}, expected {t + off}")
                            if t in got:
                                points.append((t, got[t]))
                    tap.ok(bad == 0 and n > 0, f"clock, {name}: {n} instants agree with zoneinfo",
                           "\n".join(detail[:10]))
                fixed = "vector(time() - 18000)"
                wrong = 0
                for start, end in weeks:
                    got = query_range(prom, fixed, start, end)
                    wrong += sum(1 for t in range(start, end + 1, STEP) if got.get(t) != t + expected(cal, t)[0])
                tap.ok(wrong > 0, f"a fixed UTC-5 clock is caught ({wrong} wrong instants in the summer weeks)")
                after = end_of_years + 200 * day
                got = query_range(prom, clock, after, after)
                frozen = gen._offset(cal["tz"], end_of_years - 1)
                tap.ok(got.get(after) == after + frozen,
                       f"after {y1} the offset stays at its last value ({frozen} s; the zone's own then: "
                       f"{expected(cal, after)[0]} s)", f"got {got}")
        except RuntimeError as e:
            tap.ok(False, "Prometheus evaluates the clock", e)
            return tap.done()

        # Stage 2: market:open:bool over those clock values, one second apart from BASE on.
        base = 1_600_000_000
        om = os.path.join(d, "clock.om")
        with open(om, "w") as f:
            f.write("# TYPE market:local_time:seconds gauge\n")
            for i, (_, v) in enumerate(points):
                f.write(f"market:local_time:seconds {v:.0f} {base + i}\n")
            f.write("# EOF\n")
        blocks = os.path.join(d, "tsdb")
        r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", om, blocks],
                           capture_output=True, text=True)
        if not tap.ok(r.returncode == 0, f"{len(points)} clock values written into a TSDB", r.stdout + r.stderr):
            return tap.done()
        try:
            with Prometheus(cfg, tsdb=blocks, retention="100y") as prom:
                bad, detail = 0, []
                for lo in range(0, len(points), 10000):
                    hi = min(lo + 10000, len(points)) - 1
                    data = prom.api("/api/v1/query_range", query=group["market:open:bool"],
                                    start=base + lo, end=base + hi, step=1)
                    got = {int(float(t)): float(v) for t, v in data["result"][0]["values"]} if data["result"] else {}
                    for i in range(lo, hi + 1):
                        t = points[i][0]
                        want = expected(cal, t)[1]
                        if got.get(base + i) != want:
                            bad += 1
                            detail.append(f"{dt.datetime.fromtimestamp(t, cal['tz']).isoformat()}: "
                                          f"market:open:bool {got.get(base + i)}, expected {want}")
                opened = sum(expected(cal, t)[1] for t, _ in points)
                tap.ok(bad == 0, f"market:open:bool agrees with the calendar at all {len(points)} instants "
                                 f"({opened} open)", "\n".join(detail[:10]))
        except RuntimeError as e:
            tap.ok(False, "Prometheus evaluates market:open:bool", e)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
